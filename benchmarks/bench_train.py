"""Benchmark training throughput of the seed preset against this machine's limit and the seed's own Keras code.

Measures, in one run, side by side:
- training sequences per second (forward, backward, Adam step; dropouts on) at batch 64, window 64,
  in fp32 and under bf16 autocast;
- the LSTM's achieved FLOP/s as a fraction of a plain matrix multiply of the LSTM's shapes
  (the recurrent gate product (batch, units) x (units, 4 units), and the input projection of
  all steps at once), through oneDNN in the same precision;
- optionally the specification's Keras model (`--seed-python` names a Python with tensorflow-cpu
  and keras, running the specification's Keras code as written), and the ratio to it;
- optionally (`--quality-files N`) validation loss after one epoch on N Bach chorales in fp32 and
  bf16-mixed, same data and seed.

    .venv/bin/python benchmarks/bench_train.py --seed-python /tmp/seedref/bin/python --quality-files 60
Prints a table (one JSON line with --json). Asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.mkldnn import to_mkldnn

from musiclstm import CorpusConfig, build_corpus
from musiclstm.config import MODEL_PRESETS, N_KEYS, TrainConfig
from musiclstm.network.bundle import cpu_name
from musiclstm.network.model import MusicLSTM
from musiclstm.network.run import read_history
from musiclstm.network.training import train

SEED_REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "bench" / "seed_reference.py"


def autocast(precision: str):
    if precision == "bf16-mixed":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_flops_per_sequence(units: int, dense: int, window: int) -> float:
    """Multiply-adds x 2 of one sequence's forward pass, x 3 for forward plus backward."""
    lstm1 = 4 * units * (N_KEYS + units)
    lstm2 = 4 * units * (units + units)
    head = units * dense + dense * N_KEYS
    return 3 * 2 * (window * (lstm1 + lstm2) + head)


def time_training(batch: int, window: int, precision: str, n_batches: int) -> float:
    """Sequences per second of the seed preset's training step."""
    torch.manual_seed(0)
    model = MusicLSTM(MODEL_PRESETS["seed"], pos_weight=10.0).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    inputs = (torch.rand(n_batches + 2, batch, window, N_KEYS) < 0.05).float()
    targets = (torch.rand(n_batches + 2, batch, N_KEYS) < 0.05).float()

    def step(index: int) -> None:
        optimizer.zero_grad(set_to_none=True)
        with autocast(precision):
            features, _ = model(inputs[index])
            loss = model.head.loss(features, targets[index])
        loss.backward()
        optimizer.step()

    step(0), step(1)  # warm-up
    started = time.perf_counter()
    for index in range(2, n_batches + 2):
        step(index)
    return n_batches * batch / (time.perf_counter() - started)


def matmul_flops_per_second(m: int, k: int, n: int, precision: str, repeats: int = 200) -> float:
    """FLOP/s of (m, k) x (k, n) through oneDNN, the library the fused LSTM kernel runs on.

    Plain `a @ b` goes to Intel MKL, which takes slower code paths on AMD CPUs; timing it there
    would understate the machine (seen: 208 GFLOP/s fp32 against oneDNN's 376 at the same shape).
    """
    dtype = torch.bfloat16 if precision == "bf16-mixed" else torch.float32
    with torch.no_grad():
        layer = to_mkldnn(torch.nn.Linear(k, n, bias=False).eval(), dtype)
        inputs = torch.randn(m, k).to_mkldnn(dtype)
        for _ in range(10):
            layer(inputs)
        started = time.perf_counter()
        for _ in range(repeats):
            layer(inputs)
    return 2 * m * k * n * repeats / (time.perf_counter() - started)


def seed_reference(python: str, sequences: int) -> dict:
    done = subprocess.run(
        [python, str(SEED_REFERENCE), "--sequences", str(sequences), "--steps", "32", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bf16_quality(n_files: int) -> dict:
    """Validation loss after one epoch of the seed preset on `n_files` chorales, fp32 against bf16-mixed."""
    losses = {}
    with tempfile.TemporaryDirectory() as scratch:
        build_corpus(CorpusConfig("bach", limit=n_files, workers=2), Path(scratch) / "corpus")
        for precision in ("32", "bf16-mixed"):
            run = Path(scratch) / precision
            started = time.perf_counter()
            train(Path(scratch) / "corpus", run, MODEL_PRESETS["seed"], TrainConfig(epochs=1, precision=precision))
            losses[precision] = {
                "val_loss": read_history(run)[0]["val_loss"],
                "minutes": round((time.perf_counter() - started) / 60, 2),
            }
    fp32, bf16 = losses["32"]["val_loss"], losses["bf16-mixed"]["val_loss"]
    return dict(losses, relative_difference=round(abs(bf16 - fp32) / fp32, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=12, help="training batches to time per precision")
    parser.add_argument("--seed-python", help="a Python with tensorflow-cpu and keras for the seed's own model")
    parser.add_argument("--quality-files", type=int, default=0, help="chorales for the bf16 validation check")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    batch, window, config = 64, 64, MODEL_PRESETS["seed"]
    units = config.lstm_units
    flops = training_flops_per_sequence(units, config.dense_units, window)
    result = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    for precision in ("32", "bf16-mixed"):
        rate = time_training(batch, window, precision, args.batches)
        recurrent = matmul_flops_per_second(batch, units, 4 * units, precision)
        projection = matmul_flops_per_second(batch * window, units, 4 * units, precision, repeats=20)
        result[precision] = {
            "sequences_per_s": round(rate, 1),
            "achieved_gflops": round(rate * flops / 1e9, 1),
            "matmul_gflops_recurrent_shape": round(recurrent / 1e9, 1),
            "matmul_gflops_projection_shape": round(projection / 1e9, 1),
            "fraction_of_best_matmul": round(rate * flops / max(recurrent, projection), 2),
        }
    if args.seed_python:
        reference = seed_reference(args.seed_python, sequences=512)
        result["seed_reference"] = reference
        for precision in ("32", "bf16-mixed"):
            ratio = result[precision]["sequences_per_s"] / reference["train_sequences_per_s"]
            result[precision]["times_seed"] = round(ratio, 2)
    if args.quality_files:
        result["bf16_quality"] = bf16_quality(args.quality_files)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"CPU: {result['cpu']}, {result['threads']} threads, torch {result['torch']}; seed preset, batch 64, window 64"
    )
    for precision in ("32", "bf16-mixed"):
        row = result[precision]
        print(
            f"  {precision:>10}: {row['sequences_per_s']} sequences/s, {row['achieved_gflops']} GFLOP/s achieved; "
            f"matmul {row['matmul_gflops_recurrent_shape']} (recurrent) / {row['matmul_gflops_projection_shape']} "
            f"(projection) GFLOP/s -> {row['fraction_of_best_matmul']:.0%} of the best"
            + (f"; {row['times_seed']}x the seed's Keras" if "times_seed" in row else "")
        )
    if "seed_reference" in result:
        reference = result["seed_reference"]
        print(
            f"  seed's Keras ({reference['backend']} {reference['keras']}): "
            f"{reference['train_sequences_per_s']} sequences/s"
        )
    if "bf16_quality" in result:
        quality = result["bf16_quality"]
        print(
            f"  val_loss after 1 epoch on {args.quality_files} chorales: fp32 {quality['32']['val_loss']:.4f}, "
            f"bf16-mixed {quality['bf16-mixed']['val_loss']:.4f} ({quality['relative_difference']:.2%} apart)"
        )


if __name__ == "__main__":
    main()
