"""Benchmark a primer past oneDNN's LSTM limit: time and peak memory, read in chunks and in one call.

A primer of `--steps` steps of silence (a MIDI file of a few dozen bytes: one note, the silence, one
note, at 4 steps per beat) is read by the bundled model (the seed's 512 units) in `stateful` context
before 4 steps are composed. `chunked` reads it as musiclstm does, at most ROWS_PER_CALL (8,192) batch
rows x steps per LSTM call; `one-call` lifts that limit, as before chunking, where oneDNN's kernel
refuses more than about 262,000 steps at 512 units. Each way runs in its own process, so that its
peak resident memory is its own. `tests/test_lengths.py` holds the same promise at a few thousand
steps with a small limit patched in; this is the measurement at full length.

    .venv/bin/python benchmarks/bench_lengths.py [--steps 300000] [--ways chunked one-call]
Prints a table. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mido


def silent_primer(path: Path, steps: int) -> Path:
    """One note, `steps` steps of silence at 4 steps per beat (24 ticks a beat), one note."""
    ticks = steps // 4 * 24
    file = mido.MidiFile(type=0, ticks_per_beat=24)
    track = mido.MidiTrack()
    for pitch, start in ((60, 0), (64, ticks - 6)):
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=start))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=6))
    file.tracks.append(track)
    file.save(path)
    return path


def peak_megabytes() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux gives kilobytes


def measure(way: str, steps: int) -> dict:
    """Compose 4 steps after the primer in this process; the seconds, the memory and how it ended."""
    from musiclstm import generate
    from musiclstm.composing.generation import open_composer
    from musiclstm.network import model as model_module

    if way == "one-call":
        model_module.ROWS_PER_CALL = 10**9  # the whole primer in one LSTM call, as before chunking
    composer = open_composer(None)
    with tempfile.TemporaryDirectory() as scratch:
        primer = silent_primer(Path(scratch) / "primer.mid", steps)
        primer_bytes = primer.stat().st_size
        before = peak_megabytes()
        started = time.perf_counter()
        try:
            composition = generate(composer, primer, context="stateful", length=4, seed=0)
            outcome = f"{composition.rolls.shape[1]:,} steps composed"
        except RuntimeError as err:
            outcome = f"failed: {str(err).splitlines()[0][:90]}"
        seconds = time.perf_counter() - started
    return {
        "way": way,
        "primer_bytes": primer_bytes,
        "seconds": round(seconds, 1),
        "peak_mb_before": round(before),
        "peak_mb": round(peak_megabytes()),
        "outcome": outcome,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300_000)
    parser.add_argument("--ways", nargs="+", default=["chunked", "one-call"], choices=["chunked", "one-call"])
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child process measuring one way
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.steps)))
        return
    from musiclstm.network.bundle import cpu_name

    print(f"CPU: {cpu_name()}; the bundled model, a primer of {args.steps:,} steps of silence, stateful context")
    for way in args.ways:
        child = [sys.executable, __file__, "--steps", str(args.steps), "--one", way]
        done = subprocess.run(child, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"  {way:>9}: the process ended with status {done.returncode}: {done.stderr.strip()[-200:]}")
            continue
        row = json.loads(done.stdout.splitlines()[-1])
        print(
            f"  {way:>9}: a {row['primer_bytes']}-byte primer, {row['seconds']:.1f} s, "
            f"peak {row['peak_mb'] / 1024:5.2f} GB "
            f"({row['peak_mb_before'] / 1024:.2f} GB before reading the primer); {row['outcome']}"
        )


if __name__ == "__main__":
    main()
