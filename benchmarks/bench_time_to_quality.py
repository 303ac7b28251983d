"""Benchmark time to quality: validation NLL against wall-clock minutes for objectives `last` and `all`.

For each grid (`--steps-per-beat`, default 1 and 4) it builds the Bach chorale corpus, trains the
seed preset with each objective under the same seed, settings and time budget (`--minutes`, or
until early stopping), then scores each run's best model on the test split in both contexts.
It reports the minutes `all` needs to reach the best validation NLL that `last` reached in its
whole budget, and draws validation NLL against minutes (`--plot`).

Validation NLL is each objective's own: `last` scores each validation frame from the 64 frames before
it, `all` from at least 64 (the chunk's window and what precedes the frame in its chunk); the test
scores use one protocol for both.

    .venv/bin/python benchmarks/bench_time_to_quality.py --minutes 25 --plot time_to_quality.png
Prints a table (one JSON line with --json). Asserts nothing. Runs sequentially: about
2 x steps-per-beat values x minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from musiclstm import CorpusConfig, build_corpus
from musiclstm.config import MODEL_PRESETS, TrainConfig
from musiclstm.judging.evaluation import evaluate
from musiclstm.network.bundle import cpu_name
from musiclstm.network.run import read_history
from musiclstm.network.training import train


def minutes_to_reach(history: list[dict], target: float) -> float | None:
    """Wall-clock minutes at the first epoch whose validation NLL is at or below `target`."""
    return next((row["minutes"] for row in history if row["val_nll"] <= target), None)


def run_grid(steps_per_beat: int, minutes: float, scratch: Path, settings: dict) -> dict:
    corpus = scratch / f"bach{steps_per_beat}"
    build_corpus(CorpusConfig("bach", steps_per_beat=steps_per_beat, workers=2), corpus)
    runs = {}
    for objective in ("last", "all"):
        run = scratch / f"{objective}{steps_per_beat}"
        config = TrainConfig(objective=objective, max_minutes=minutes, epochs=10_000, **settings)
        train(corpus, run, MODEL_PRESETS["seed"], config)
        history = read_history(run)
        runs[objective] = {
            "history": [{key: row[key] for key in ("epoch", "minutes", "val_nll")} for row in history],
            "best_val_nll": min(row["val_nll"] for row in history),
            "minutes": history[-1]["minutes"],
            "epochs": len(history),
            "test_nll": {
                context: round(evaluate(corpus, run, "test", context)["nll"], 3) for context in ("stateful", "window")
            },
        }
    reach = minutes_to_reach(runs["all"]["history"], runs["last"]["best_val_nll"])
    return {
        "runs": runs,
        "all_minutes_to_last_best": reach,
        "speedup": round(runs["last"]["minutes"] / reach, 1) if reach else None,
    }


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for axis, (steps_per_beat, result) in zip(axes[0], results.items(), strict=True):
        for objective, run in result["runs"].items():
            history = run["history"]
            axis.plot(
                [row["minutes"] for row in history],
                [row["val_nll"] for row in history],
                marker=".",
                label=f"objective {objective}",
            )
        axis.set(
            title=f"Bach chorales, {steps_per_beat} step(s) per beat",
            xlabel="wall-clock minutes",
            ylabel="validation NLL (nats per frame)",
            xscale="log",
        )
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=25.0, help="time budget of each run")
    parser.add_argument("--steps-per-beat", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--pos-weight", type=float, help="default: the package's (NLL is scored calibrated either way)")
    parser.add_argument("--chunk", type=int, help="objective all: target frames per chunk (default: the package's)")
    parser.add_argument("--batch-size", type=int, help="default: the package's")
    parser.add_argument("--plot", type=Path, help="write validation NLL against minutes to this PNG")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    options = (("pos_weight", args.pos_weight), ("chunk", args.chunk), ("batch_size", args.batch_size))
    settings = {key: value for key, value in options if value}
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for steps_per_beat in args.steps_per_beat:
            results[steps_per_beat] = run_grid(steps_per_beat, args.minutes, Path(scratch), settings)
    if args.plot:
        plot(results, args.plot)
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "settings": settings, "results": results}))
        return
    print(f"CPU: {cpu_name()}; seed preset, fp32, {settings}, budget {args.minutes} min per run")
    for steps_per_beat, result in results.items():
        print(f"  {steps_per_beat} step(s) per beat:")
        for objective, run in result["runs"].items():
            print(
                f"    {objective:>4}: best val NLL {run['best_val_nll']:.3f} after {run['epochs']} epochs, "
                f"{run['minutes']:.1f} min; test NLL stateful {run['test_nll']['stateful']}, "
                f"window {run['test_nll']['window']}"
            )
        print(f"    'all' reaches 'last''s best in {result['all_minutes_to_last_best']} min ({result['speedup']}x)")


if __name__ == "__main__":
    main()
