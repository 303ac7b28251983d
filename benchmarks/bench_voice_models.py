"""Measure what the network's new readings do to its likelihood and to the voices of its music.

For each variant of the default network, trains the same minutes on the same corpus and seed with
transposition (the bundled model's recipe), one after another, then reports on the valid split
(nothing is chosen on the test split): the frame NLL of the sounding keys, and for `--pieces`
pieces composed with the default settings (seed 11) the voice statistics beside the valid
pieces' and the two-sample classifier's accuracy. Variants: `metre` (the network before: keys,
struck, metre), `phrase` (it also reads how near the next marked phrase end is), `phrase+previous`
(its head also reads the keys sounding the step before). Prints a table and writes
`<out>/voice_models.json`. Asserts nothing.

    .venv/bin/python benchmarks/bench_voice_models.py --data data/bach --minutes 9 --out runs/voice_models
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

from bench_voices import ROWS, judged_row

from musiclstm import TrainConfig, generate, load_corpus, train
from musiclstm.composing.saving import save_pieces
from musiclstm.config import ModelConfig
from musiclstm.judging.comparison import compare_generated
from musiclstm.judging.evaluation import evaluate_model
from musiclstm.network.bundle import cpu_name
from musiclstm.network.run import load_model

VARIANTS = {
    "metre": ModelConfig(inputs=("keys", "struck", "metre"), head_reads_previous=False),
    "phrase": ModelConfig(head_reads_previous=False),
    "phrase+previous": ModelConfig(),
}


def measure(data: Path, out: Path, name: str, minutes: float, pieces: int) -> dict:
    """Train one variant, score it on the valid split and judge its music against the valid pieces."""
    run = out / name
    result = train(data, run, VARIANTS[name], replace(TrainConfig(), max_minutes=minutes, transpose=True, seed=0))
    corpus = load_corpus(data)
    scored = evaluate_model(load_model(run), corpus, "valid", "stateful")
    composition = generate(run, num_outputs=pieces, length=256, seed=11)
    save_pieces(composition, out / f"{name}_pieces", audio=False, replace=True)
    judged = compare_generated(out / f"{name}_pieces", corpus, "valid")
    return {
        "variant": name,
        "epochs": result["epochs"],
        "valid_nll": round(scored["nll"], 3),
        "two_sample_accuracy": judged["two_sample_accuracy"],
        "generated": judged_row(judged["generated"]),
        "real": judged_row(judged["real"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/bach"))
    parser.add_argument("--out", type=Path, default=Path("runs/voice_models"))
    parser.add_argument("--minutes", type=float, default=9.0)
    parser.add_argument("--pieces", type=int, default=24)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in args.variants:
        results.append(measure(args.data, args.out, name, args.minutes, args.pieces))
        (args.out / "voice_models.json").write_text(json.dumps({"cpu": cpu_name(), "results": results}, indent=1))
    columns = ["epochs", "valid_nll", "two-sample", *ROWS, "off 16ths %"]
    print(f"{args.minutes:g} minutes each, {args.pieces} pieces against the valid split; {cpu_name()}")
    print(f"{'':18}" + "".join(f"{column:>19}" for column in columns))
    print(f"{'real (valid)':18}" + " " * 57 + "".join(f"{results[0]['real'][c]:>19.2f}" for c in columns[3:]))
    for result in results:
        figures = [result["epochs"], result["valid_nll"], result["two_sample_accuracy"]]
        figures += [result["generated"][c] for c in columns[3:]]
        print(f"{result['variant']:18}" + "".join(f"{figure:>19.2f}" for figure in figures))


if __name__ == "__main__":
    main()
