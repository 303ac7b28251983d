"""Benchmark training recipes: the validation NLL each reaches in one time budget, one after another.

Each recipe is a name and TrainConfig or ModelConfig changes, e.g. `--recipe stateful=objective:stateful`,
`--recipe lr2e-3=lr:0.002,batch_size:32` or `--recipe nade=head:nade`; `default=` is the package's own
settings. Every recipe
trains the package's default network (or `--preset`) on the same corpus under the same seed and budget, and is
judged by its best validation NLL; `--test` also scores the best weights on the test split in the
stateful context (report it, never choose by it).

    musiclstm data --source jsb/jsb-chorales-quarter.json --out data/jsb
    .venv/bin/python benchmarks/bench_recipes.py --data data/jsb --minutes 5 \\
        --recipe default= --recipe stateful=objective:stateful --plot recipes.png

Prints a table (one JSON line with --json). Asserts nothing. Run it alone: two trainings at once on
two cores halve each other.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import fields, replace
from pathlib import Path

from musiclstm.config import MODEL_PRESETS, ModelConfig, TrainConfig
from musiclstm.judging.evaluation import evaluate
from musiclstm.network.bundle import cpu_name
from musiclstm.network.run import read_history
from musiclstm.network.training import train


def parse_recipe(text: str) -> tuple[str, dict, dict]:
    """`name=key:value,...` as a name, ModelConfig changes and TrainConfig changes, each value typed like its field."""
    name, _, changes = text.partition("=")
    model_types = {field.name: field.type for field in fields(ModelConfig)}
    train_types = {field.name: field.type for field in fields(TrainConfig)}
    model_changes, train_changes = {}, {}
    for item in filter(None, changes.split(",")):
        key, _, value = item.partition(":")
        kind = model_types.get(key) or train_types[key]
        if "bool" in kind:
            parsed = value.lower() in ("1", "true", "yes")
        elif "int" in kind and "." not in value:
            parsed = int(value)
        elif "float" in kind or "int" in kind:
            parsed = float(value)
        else:
            parsed = value
        (model_changes if key in model_types else train_changes)[key] = parsed
    return name, model_changes, train_changes


def run_recipe(data: Path, run: Path, model_config: ModelConfig, minutes: float, changes: dict, test: bool) -> dict:
    result = train(data, run, model_config, TrainConfig(max_minutes=minutes, **changes))
    history = read_history(run)
    best = min(history, key=lambda row: row["val_nll"])
    report = {
        "changes": changes,
        "best_val_nll": round(best["val_nll"], 3),
        "best_epoch": best["epoch"],
        "best_minutes": best["minutes"],
        "epochs": len(history),
        "minutes": history[-1]["minutes"],
        "ended_by": result["ended_by"],
        "history": [{key: row[key] for key in ("epoch", "minutes", "val_nll")} for row in history],
    }
    if test:
        report["test_nll"] = round(evaluate(data, run, "test", "stateful")["nll"], 3)
    return report


def plot(results: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, result in results.items():
        history = result["history"]
        axis.plot([row["minutes"] for row in history], [row["val_nll"] for row in history], marker=".", label=name)
    axis.set(title=title, xlabel="wall-clock minutes", ylabel="validation NLL (nats per frame)", xscale="log")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a corpus folder made by 'musiclstm data'")
    parser.add_argument("--minutes", type=float, default=5.0, help="time budget of each run")
    parser.add_argument("--recipe", action="append", required=True, help="name=key:value,... (settings fields)")
    parser.add_argument("--preset", default="nade", choices=sorted(MODEL_PRESETS), help="default: the package's")
    parser.add_argument("--test", action="store_true", help="also score each best model on the test split")
    parser.add_argument("--plot", type=Path, help="write validation NLL against minutes to this PNG")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as scratch:
        for text in args.recipe:
            name, model_changes, changes = parse_recipe(text)
            model_config = replace(MODEL_PRESETS[args.preset], **model_changes)
            results[name] = run_recipe(args.data, Path(scratch) / name, model_config, args.minutes, changes, args.test)
            results[name]["model_changes"] = model_changes
            if not args.json:
                result = results[name]
                print(
                    f"{name:>14}: best val NLL {result['best_val_nll']:.3f} at epoch {result['best_epoch']} "
                    f"({result['best_minutes']:.1f} min), {result['epochs']} epochs, ended by {result['ended_by']}"
                    + (f"; test NLL {result['test_nll']:.3f}" if args.test else ""),
                    flush=True,
                )
    if args.plot:
        plot(results, args.plot, f"{args.data.name}, {args.preset} preset, {args.minutes:g} min each")
    if args.json:
        print(json.dumps({"cpu": cpu_name(), "minutes": args.minutes, "results": results}))
    else:
        print(f"CPU: {cpu_name()}; {args.preset} preset, budget {args.minutes:g} min per recipe")


if __name__ == "__main__":
    main()
