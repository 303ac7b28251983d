"""Benchmark the two output heads on the seed trunk: scoring, composing and a training step, side by side.

For each head (`independent`, the specification's, and `nade`) the same seed-preset network with
random weights (the work does not depend on them):
- scoring: `evaluate_model` over one split of a corpus in the stateful context (the literature's);
- composing: 256 steps in the stateful context, one piece and 32 at once, by threshold and by sampling;
- training: one forward, backward and Adam step on 8 chunks of 64 targets (objective `all`).

    .venv/bin/python benchmarks/bench_heads.py --data data/jsb --split test

Prints a table (one JSON line with --json). Asserts nothing; run it alone.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace

import numpy as np
import torch

from musiclstm.composing.generation import compose_rolls
from musiclstm.config import MODEL_PRESETS, N_KEYS, GenerationSettings
from musiclstm.data.corpus import load_corpus
from musiclstm.judging.evaluation import evaluate_model
from musiclstm.network.bundle import cpu_name
from musiclstm.network.model import MusicLSTM


def seconds(function, *args, repeats: int = 3) -> float:
    """The fastest of `repeats` calls, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        function(*args)
        best = min(best, time.perf_counter() - started)
    return best


def training_step(model: MusicLSTM, optimizer: torch.optim.Optimizer, rolls: torch.Tensor) -> None:
    model.train()
    features, _ = model(rolls[:, :-1], every_step=True)
    optimizer.zero_grad()
    model.head.loss(features[:, 63:], rolls[:, 64:]).backward()
    optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a corpus folder made by 'musiclstm data'")
    parser.add_argument("--split", default="test")
    parser.add_argument("--length", type=int, default=256)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    corpus = load_corpus(args.data)
    primer = (np.random.default_rng(0).random((64, N_KEYS)) < 0.05).astype(np.float32)
    rolls = torch.from_numpy((np.random.default_rng(1).random((8, 128, N_KEYS)) < 0.05).astype(np.float32))
    results = {}
    for head in ("independent", "nade"):
        torch.manual_seed(0)
        model = MusicLSTM(replace(MODEL_PRESETS["seed"], head=head)).eval()
        row = {"scoring": seconds(evaluate_model, model, corpus, args.split, "stateful", repeats=2)}
        for choose in ("threshold", "sample"):
            for batch in (1, 32):
                settings = GenerationSettings(length=args.length, num_outputs=batch, seed=0, choose=choose)
                row[f"compose_{choose}_{batch}"] = seconds(compose_rolls, model, primer, settings, "stateful")
        optimizer = torch.optim.Adam(model.parameters())
        row["training_step"] = seconds(training_step, model, optimizer, rolls, repeats=5)
        results[head] = row
    frames = sum(piece.frames for piece in corpus.split(args.split))
    result = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "frames": frames, **results}
    if args.json:
        print(json.dumps(result))
        return
    print(f"CPU: {result['cpu']}, {result['threads']} threads; seed trunk; {args.split} split, {frames:,} frames")
    print(f"  {'':<26} {'independent':>12} {'nade':>10} {'ratio':>7}")
    for name in results["independent"]:
        independent, nade = results["independent"][name], results["nade"][name]
        print(f"  {name + ' (s)':<26} {independent:>12.3f} {nade:>10.3f} {nade / independent:>7.2f}")


if __name__ == "__main__":
    main()
