"""Benchmark how long a command takes whole, start-up included: what a user waits for at the prompt.

Times, as separate processes run one after the other, `python -c "import musiclstm"`, `musiclstm --help`,
and `musiclstm generate --no-audio --length 256` with the bundled model (one piece: MIDI, PNG and JSON),
each `--runs` times, and prints the minimum, median and maximum seconds beside the CPU model. With
`--profile` it also prints the slowest imports of the generate command (`python -X importtime`).

    .venv/bin/python benchmarks/bench_startup.py [--runs 5] [--profile]
Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from musiclstm.network.bundle import cpu_name

COMMAND = Path(sys.executable).with_name("musiclstm")


def seconds_of(command: list[str], runs: int) -> list[float]:
    """Wall-clock seconds of `runs` runs of a command, each a fresh process; a failing run stops the benchmark."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def slowest_imports(command: list[str], count: int = 12) -> list[tuple[float, str]]:
    """The `count` imports of a command with the most cumulative seconds, from `python -X importtime`."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command], capture_output=True, text=True, check=True)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line and "cumulative" not in line:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            rows.append((int(cumulative) / 1e6, name))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="also list the generate command's slowest imports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        generate = [str(COMMAND), "generate", "--no-audio", "--length", "256", "--out", scratch, "--force"]
        cases = {
            "import musiclstm": [sys.executable, "-c", "import musiclstm"],
            "musiclstm --help": [str(COMMAND), "--help"],
            "generate --no-audio, 256 steps": generate,
        }
        print(f"CPU: {cpu_name()}; {args.runs} runs each, seconds (min / median / max)")
        for name, command in cases.items():
            times = seconds_of(command, args.runs)
            print(f"{name:32s} {min(times):.2f} / {statistics.median(times):.2f} / {max(times):.2f}")
        if args.profile:
            script = ["-c", "import sys; from musiclstm.cli import main; sys.exit(main(sys.argv[1:]))", *generate[1:]]
            for seconds, name in slowest_imports(script):
                print(f"  {seconds:6.2f} s  {name}")


if __name__ == "__main__":
    main()
