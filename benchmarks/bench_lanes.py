"""Benchmark the two readers of `window` context: lanes against re-reading the window, by batch size.

Both give the same predictions (a test pins it); this measures which is faster, so that lanes are
kept only where they win. Seed preset, random weights (the work does not depend on them), 256 steps,
runs alternating between the two readers so that a noisy neighbour hits both alike.

    .venv/bin/python benchmarks/bench_lanes.py --repeats 4
Prints one line per batch size. Asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from musiclstm.config import MODEL_PRESETS, N_KEYS
from musiclstm.network.bundle import cpu_name
from musiclstm.network.heads import DrawRules
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import WindowReader, as_events


@torch.inference_mode()
def seconds(lanes: bool, model: MusicLSTM, batch: int, length: int) -> float:
    primer = torch.rand(batch, model.config.window, N_KEYS, generator=torch.Generator().manual_seed(0)) < 0.05
    started = time.perf_counter()
    reader = WindowReader(model, as_events(primer.numpy()), batch, lanes=lanes)
    keys = primer[:, -1]
    for _ in range(length):
        step = model.draw(reader.features, keys, DrawRules())
        reader.read(step.float())
        keys = step[:, :N_KEYS]
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    torch.manual_seed(0)
    model = MusicLSTM(MODEL_PRESETS["seed"]).eval()
    seconds(True, model, 1, 4)  # warm-up
    print(f"CPU: {cpu_name()}, {torch.get_num_threads()} threads; seed preset, {args.length} steps per piece")
    for batch in args.batches:
        times = {True: [], False: []}  # lanes, re-reading
        for _ in range(args.repeats):
            for lanes in times:
                times[lanes].append(seconds(lanes, model, batch, args.length))
        lanes, rereading = (statistics.median(values) for values in times.values())
        print(
            f"  {batch} piece(s): lanes {lanes:.2f} s, re-reading {rereading:.2f} s (medians of {args.repeats}); "
            f"lanes {rereading / lanes:.2f}x"
        )


if __name__ == "__main__":
    main()
