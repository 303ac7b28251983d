"""Benchmark generation speed: one 256-step piece and 32 pieces at once, window and stateful, against the seed's loop.

The seed's loop is re-implemented as the specification writes it (section 6.4): batch 1, the whole
64-step window run through the model every step, the probabilities copied to NumPy, the seed's
softmax temperature and renormalised key mask applied there, and the window rebuilt with np.vstack.
Ours runs `generation.compose_rolls`: the same network (the seed preset), the same 256 steps, the
key mask and threshold in torch, in `window` context (each step from the last 64 steps alone: by
lanes for one piece, by re-reading for 32) and in `stateful` context (the LSTM state carried, one
step of work per step). Weights are random: the work per step does not depend on them.

    .venv/bin/python benchmarks/bench_generate.py
Prints a table (one JSON line with --json). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from musiclstm.composing.generation import compose_rolls
from musiclstm.config import MODEL_PRESETS, N_KEYS, GenerationSettings
from musiclstm.network.bundle import cpu_name
from musiclstm.network.model import MusicLSTM


def seed_loop(model: MusicLSTM, window: np.ndarray, length: int) -> np.ndarray:
    """The specification's generate_music(): predict, softmax temperature, mask and renormalise, threshold."""
    major = np.array([(21 + k) % 12 in {0, 2, 4, 5, 7, 9, 11} for k in range(N_KEYS)], dtype=float)
    generated, current = window.copy(), window.copy()
    for _ in range(length):
        with torch.no_grad():
            probs = torch.sigmoid(model.head(model(torch.from_numpy(current[None]))[0]))[0].numpy()
        logits = np.log(np.clip(probs, 1e-10, 1.0)) / 0.8
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        probs = probs * major
        probs = probs / probs.sum() if probs.sum() > 0 else major / major.sum()
        step = (probs > 0.5).astype(np.float32)
        if step.sum() == 0:
            step[np.argsort(probs)[-3:]] = 1
        generated = np.vstack([generated, step])
        current = np.vstack([current[1:], step])
    return generated


def seconds(function, *args) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = MusicLSTM(MODEL_PRESETS["seed"]).eval()
    primer = (np.random.default_rng(0).random((64, N_KEYS)) < 0.05).astype(np.float32)
    compose_rolls(model, primer, GenerationSettings(length=4, seed=0), "window")  # warm-up
    timings = {"seed_loop_1": seconds(seed_loop, model, primer, args.length)}
    for precision, suffix in (("32", ""), ("bf16-mixed", "_bf16")):
        for context in ("window", "stateful"):
            for batch in (1, args.batch):
                settings = GenerationSettings(length=args.length, num_outputs=batch, seed=0, precision=precision)
                timings[f"{context}{suffix}_{batch}"] = seconds(compose_rolls, model, primer, settings, context)
    result = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "length": args.length, **timings}
    if args.json:
        print(json.dumps(result))
        return
    print(f"CPU: {result['cpu']}, {result['threads']} threads; seed preset, {args.length} steps per piece")
    for name, total in timings.items():
        pieces = int(name.rsplit("_", 1)[1])
        print(
            f"  {name:>14}: {total:6.2f} s, {pieces * args.length / total:8.0f} steps/s in total, "
            f"{result['seed_loop_1'] / total * pieces:6.1f}x the seed's loop per piece"
        )


if __name__ == "__main__":
    main()
