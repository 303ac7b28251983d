"""Fuzz MIDI reading at scale: thousands of hostile files, each must be read or named, never crash.

Mutations of real chorales written as MIDI (bytes flipped, truncated, chunks duplicated) and the
crafted extremes of tests/midi_fuzz.py. Prints how many were read and named, the slowest file and
the peak memory of the process, so that the bound on work per file is a measured figure.

    .venv/bin/python benchmarks/bench_fuzz.py --cases 3000
Asserts nothing except that no case escaped as a crash (which it reports and counts).
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from musiclstm.network.bundle import cpu_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from midi_fuzz import fuzz_cases  # noqa: E402

from musiclstm import CorpusConfig, MusicLSTMError, build_corpus, load_corpus  # noqa: E402
from musiclstm.music.roll import midi_to_roll, roll_to_midi  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        build_corpus(CorpusConfig("bach", limit=8), folder / "corpus")
        seeds = []
        for number, piece in enumerate(load_corpus(folder / "corpus").pieces):
            roll_to_midi(piece.roll, 4).write(str(folder / f"seed_{number}.mid"))
            seeds.append((folder / f"seed_{number}.mid").read_bytes())
        counts, slowest, crashes = {"read": 0, "named": 0}, (0.0, ""), []
        started = time.perf_counter()
        for name, data in fuzz_cases(seeds, args.cases, random.Random(args.seed)):
            path = folder / "case.mid"
            path.write_bytes(data)
            began = time.perf_counter()
            try:
                midi_to_roll(path, 4)
                counts["read"] += 1
            except MusicLSTMError:
                counts["named"] += 1
            except Exception as err:  # what the benchmark exists to find
                crashes.append(f"{name}: {type(err).__name__}: {err}")
            slowest = max(slowest, (time.perf_counter() - began, name))
        total = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"CPU: {cpu_name()}; {args.cases} cases in {total:.1f} s")
    print(f"  read {counts['read']}, named with a reason {counts['named']}, crashed {len(crashes)}")
    print(f"  slowest file {slowest[0]:.2f} s ({slowest[1]}); peak memory of the process {peak_mb:.0f} MB")
    for crash in crashes[:20]:
        print(f"  CRASH {crash}")


if __name__ == "__main__":
    main()
