"""Benchmark the novelty check on a large training set: what it costs to ask whether pieces are copied.

The training set is a corpus's train split repeated in `--copies` transpositions (-6..+5 semitones,
those that stay on the keyboard), so it has the size of a corpus of thousands of pieces; the pieces
judged are `--pieces` MIDI files of a folder (say, `generate`'s output) or, without one, held-out
pieces of the corpus.

    .venv/bin/python benchmarks/bench_novelty.py --data data/bach --copies 12 --generated out/

Prints the index size, the time to hash it, the time per judged piece and the peak memory. Asserts
nothing; run it alone.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np

from musiclstm.data.corpus import load_corpus
from musiclstm.judging.comparison import primer_steps
from musiclstm.judging.novelty import PassageHashes, novelty
from musiclstm.music.grid import Grid
from musiclstm.music.roll import midi_to_roll
from musiclstm.network.bundle import cpu_name


def transposed(roll: np.ndarray, semitones: int) -> np.ndarray:
    moved = np.zeros_like(roll)
    if semitones >= 0:
        moved[:, semitones:] = roll[:, : roll.shape[1] - semitones]
    else:
        moved[:, :semitones] = roll[:, -semitones:]
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a corpus folder")
    parser.add_argument("--copies", type=int, default=12, help="transpositions of the train split (at most 12)")
    parser.add_argument("--generated", help="a folder of .mid files to judge (default: the corpus's test pieces)")
    parser.add_argument("--pieces", type=int, default=32)
    args = parser.parse_args()
    corpus = load_corpus(args.data)
    train = [piece.roll for piece in corpus.split("train")]
    shifts = list(range(-6, 6))[: args.copies]
    training = [transposed(roll, shift) for shift in shifts for roll in train]
    if args.generated:
        paths = sorted(Path(args.generated).glob("*.mid"))[: args.pieces]
        rolls = [midi_to_roll(path, corpus.steps_per_beat).roll for path in paths]
        judged = [roll[primer_steps(path, len(roll)) :] for path, roll in zip(paths, rolls, strict=True)]
    else:
        judged = [piece.roll for piece in corpus.split("test")][: args.pieces]
    bar = Grid(corpus.steps_per_beat).steps_per_bar
    started = time.perf_counter()
    index = PassageHashes(training)
    hashed = time.perf_counter() - started
    names = [f"piece {n}" for n in range(len(training))]
    started = time.perf_counter()
    found = [novelty(roll, index, names, bar) for roll in judged]
    judging = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    longest = max(entry["longest_shared_bars"] for entry in found)
    print(
        f"{cpu_name()}: {len(training):,} training pieces, {int(index.lengths.sum()):,} steps, hashed in {hashed:.2f} s"
    )
    print(
        f"{len(judged)} pieces judged in {judging:.2f} s ({judging / len(judged):.3f} s each); "
        f"longest shared passage {longest:g} bars"
    )
    print(f"peak memory {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
