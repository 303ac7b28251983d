"""Benchmark writing sheet music: the seconds of `write_score` (MusicXML) against the piece's length.

Pieces are generated-looking rolls at 4 steps per beat (16 per 4/4 bar) from a seeded random
generator: four voices (soprano, alto, tenor, bass ranges) in D major, each a line of notes one to
four steps long with a rest now and then, so about four keys sound and some key starts or stops at
most steps; 1,000, 2,000, 4,000 and 8,000 steps. Then one 88-note chord held a bar (16 steps).
Each row is one write after an untimed short one (music21's imports): wall seconds, CPU seconds of
this process (steadier on a shared machine), and CPU seconds per 1,000 steps: a flat column is a
cost linear in the length.

    .venv/bin/python benchmarks/bench_score.py
    .venv/bin/python benchmarks/bench_score.py --score-module /tmp/old_score.py   # another score.py

Asserts nothing; run it alone (two cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np

from musiclstm.config import LOWEST_PITCH, N_KEYS
from musiclstm.network.bundle import cpu_name

STEPS_PER_BEAT = 4
TEMPO_BPM = 100
LENGTHS = (1_000, 2_000, 4_000, 8_000)
VOICE_RANGES = ((60, 81), (53, 74), (48, 69), (36, 60))  # soprano, alto, tenor, bass (MIDI pitches)


def generated_roll(n_steps: int, seed: int = 0) -> np.ndarray:
    """A roll (n_steps, 88) that looks composed: four voices in D major, each moving on its own."""
    rng = np.random.default_rng(seed)
    scale = [pitch for pitch in range(36, 86) if pitch % 12 in {2, 4, 6, 7, 9, 11, 1}]
    roll = np.zeros((n_steps, N_KEYS), dtype=bool)
    for low, high in VOICE_RANGES:
        pitches = [pitch for pitch in scale if low <= pitch <= high]
        step = 0
        while step < n_steps:
            held = int(rng.integers(1, 5))
            if rng.random() > 0.05:
                roll[step : step + held, rng.choice(pitches) - LOWEST_PITCH] = True
            step += held
    return roll


def load_write_score(module_path: str | None):
    """`write_score` of musiclstm, or of the score.py file at `module_path` (an older copy, say)."""
    if module_path is None:
        from musiclstm.music.score import write_score

        return write_score
    spec = importlib.util.spec_from_file_location("score_under_test", module_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_score


def seconds_to_write(write_score, roll: np.ndarray, folder: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of writing the roll's score once."""
    wall, cpu = time.perf_counter(), time.process_time()
    write_score(roll, folder / "piece.musicxml", STEPS_PER_BEAT, TEMPO_BPM, "D major")
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score-module", help="time the write_score of this score.py instead of musiclstm's")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(LENGTHS), help="piece lengths in steps")
    args = parser.parse_args()
    write_score = load_write_score(args.score_module)
    print(f"write_score of {args.score_module or 'musiclstm.music.score'} on {cpu_name()}")
    print(f"{'piece':>26} | {'wall s':>7} | {'CPU s':>7} | {'CPU s per 1,000 steps':>21}")
    with tempfile.TemporaryDirectory() as scratch:
        seconds_to_write(write_score, generated_roll(64), Path(scratch))
        for n_steps in args.lengths:
            wall, cpu = seconds_to_write(write_score, generated_roll(n_steps), Path(scratch))
            print(f"{f'{n_steps:,} steps':>26} | {wall:7.2f} | {cpu:7.2f} | {cpu / n_steps * 1000:21.3f}")
        chord = np.ones((4 * STEPS_PER_BEAT, N_KEYS), dtype=bool)
        wall, cpu = seconds_to_write(write_score, chord, Path(scratch))
        print(f"{'88-note chord held a bar':>26} | {wall:7.2f} | {cpu:7.2f} |")


if __name__ == "__main__":
    main()
