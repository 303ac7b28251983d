"""Benchmark infill's time against the piece's length: does it grow with the gap and the join, or with the piece?

A chorale of the bundled model's corpus is repeated to 1,000 ... 20,000 steps and written as a MIDI
file; a 2-bar gap in its middle is rewritten with the bundled model (`--versions` pieces of
`--particles` drafts each, the join's default length) through `infill`, the fastest of `--repeats`
whole calls timed: reading the file, composing, scoring each version's join. `--before SRC` also
times the same calls with the package at SRC (e.g. an older checkout's `src`, exported with
`git archive`), in a process of its own, and prints both side by side.

    PYTHONPATH=src .venv/bin/python benchmarks/bench_infill_lengths.py --before /tmp/old/src

Asserts nothing; run it alone (two cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LENGTHS = (1_000, 2_000, 5_000, 10_000, 20_000)


def long_piece(composer, n_steps: int, folder: Path) -> Path:
    """A chorale of the model's corpus repeated to `n_steps` steps, written as a MIDI file."""
    from musiclstm.data.corpus import load_corpus
    from musiclstm.music.render import write_midi

    piece = next(piece for piece in load_corpus(composer.corpus).pieces if len(piece.piece.bar_lines()) > 8)
    times = -(-n_steps // len(piece.roll))
    roll, onsets = np.tile(piece.roll, (times, 1))[:n_steps], np.tile(piece.onsets, (times, 1))[:n_steps]
    path = folder / f"piece_{n_steps}.mid"
    write_midi(roll, path, piece.grid, 100, onsets=onsets)
    return path


def measure(lengths: list[int], versions: int, particles: int, context: str | None, repeats: int) -> list[dict]:
    """The fastest of `repeats` infills of a 2-bar gap in the middle of a piece of each length, in seconds
    (the fastest: other work on shared cores only slows a call down; a first call warms up)."""
    from musiclstm import infill, midi_to_roll, open_composer

    composer = open_composer()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n_steps in [lengths[0], *lengths]:
            path = long_piece(composer, n_steps, Path(folder))
            bars = len(midi_to_roll(path, composer.steps_per_beat).bar_lines()) - 1
            gap = (bars // 2, bars // 2 + 1)
            settings = dict(num_outputs=versions, particles=particles, seed=0)
            if context is not None:
                settings["context"] = context
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                composition = infill(path, composer, bars=gap, **settings)
                times.append(time.perf_counter() - started)
            rows.append(dict(steps=n_steps, gap=list(composition.gap), seconds=min(times)))
    return rows[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS))
    parser.add_argument("--versions", type=int, default=4, help="pieces made per infill (num_outputs)")
    parser.add_argument("--particles", type=int, default=16, help="drafts per version")
    parser.add_argument("--context", choices=["stateful", "window"], default=None, help="default: the model's")
    parser.add_argument("--repeats", type=int, default=3, help="infills timed per length, the fastest kept")
    parser.add_argument("--before", type=Path, default=None, help="a package's src folder to time as well")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON only")
    args = parser.parse_args()
    rows = measure(args.lengths, args.versions, args.particles, args.context, args.repeats)
    if args.json:
        print(json.dumps(rows))
        return
    before = None
    if args.before is not None:
        command = [sys.executable, __file__, "--json", "--versions", str(args.versions)]
        command += ["--particles", str(args.particles), "--repeats", str(args.repeats)]
        command += ["--lengths", *map(str, args.lengths)]
        command += [] if args.context is None else ["--context", args.context]
        env = dict(os.environ, PYTHONPATH=str(args.before))
        before = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    context = args.context or "the model's"
    print(f"infill of a 2-bar gap in the middle, {args.versions} versions x {args.particles} drafts, context {context}")
    print("| steps | gap (steps) | " + ("before (s) | " if before else "") + "after (s) |")
    print("|---:|---|" + ("---:|" if before else "") + "---:|")
    for number, row in enumerate(rows):
        old = f"{before[number]['seconds']:.2f} | " if before else ""
        print(f"| {row['steps']:,} | {row['gap'][0]:,}-{row['gap'][1]:,} | {old}{row['seconds']:.2f} |")


if __name__ == "__main__":
    main()
