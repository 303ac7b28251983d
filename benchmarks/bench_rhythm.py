"""Measure what reading the struck keys and the metre does: the likelihood and the rhythm of the music made.

For each variant of the network's inputs (the default network otherwise), trains the same minutes on
the same corpus and seed, one after another, then reports on the valid split (nothing is chosen on the
test split): the frame NLL of the sounding keys, the NLL of whole steps (keys sounding and struck, for
a variant with a strike head), and for `--pieces` pieces generated with the default settings the
rhythm beside the valid pieces' (onsets on each sixteenth of the beat, one-step notes, notes struck
again), notes per step, and the two-sample classifier's accuracy against the valid pieces.

    .venv/bin/python benchmarks/bench_rhythm.py --data data/bach --minutes 8 --out runs/rhythm

`--epochs N` trains each N epochs (the minutes still cap them), a fair comparison on a machine shared
with other work; the seconds per epoch are then not comparable. Variants: `keys` (today's network:
the keys alone, no strike head), `struck` (keys and keys struck,
strike head), `metre` (the default: keys, struck, the one-hot sixteenth of the beat and beat of the
bar), `metre-flags` (keys, struck, 5 flags: bar, half bar, beat, eighth, sixteenth). Prints a table
and writes `<out>/rhythm.json`. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

from musiclstm import TrainConfig, generate, load_corpus, train
from musiclstm.composing.saving import save_pieces
from musiclstm.config import ModelConfig
from musiclstm.judging.comparison import compare_generated
from musiclstm.judging.evaluation import evaluate_model
from musiclstm.network.bundle import cpu_name
from musiclstm.network.run import load_model

VARIANTS = {
    "keys": ModelConfig(inputs=("keys",), strikes=False),
    "struck": ModelConfig(inputs=("keys", "struck")),
    "metre": ModelConfig(),
    "metre-flags": ModelConfig(inputs=("keys", "struck", "metre-flags")),
}


def measure(data: Path, out: Path, name: str, minutes: float, epochs: int | None, pieces: int) -> dict:
    """Train one variant, score it on the valid split and judge its generated pieces against the valid pieces."""
    run = out / name
    started = time.perf_counter()
    result = train(data, run, VARIANTS[name], replace(TrainConfig(), max_minutes=minutes, epochs=epochs, seed=0))
    corpus = load_corpus(data)
    scored = evaluate_model(load_model(run), corpus, "valid", "stateful")
    composition = generate(run, num_outputs=pieces, length=256, seed=1)
    save_pieces(composition, out / f"{name}_pieces", audio=False, replace=True)
    judged = compare_generated(out / f"{name}_pieces", corpus, "valid")
    return {
        "variant": name,
        "epochs": result["epochs"],
        "seconds_per_epoch": round(result["seconds"] / max(1, result["epochs"]), 1),
        "valid_nll": round(scored["nll"], 3),
        "valid_event_nll": None if scored["event_nll"] is None else round(scored["event_nll"], 3),
        "generated": judged["generated"]["rhythm"],
        "real": judged["real"]["rhythm"],
        "notes_per_step": (judged["generated"]["note_density"], judged["real"]["note_density"]),
        "two_sample_accuracy": judged["two_sample_accuracy"],
        "seconds": round(time.perf_counter() - started),
    }


def share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/bach"))
    parser.add_argument("--out", type=Path, default=Path("runs/rhythm"))
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--epochs", type=int, default=None, help="the same epochs for each (the minutes still cap)")
    parser.add_argument("--pieces", type=int, default=24)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    rows = [measure(args.data, args.out, name, args.minutes, args.epochs, args.pieces) for name in args.variants]
    (args.out / "rhythm.json").write_text(json.dumps({"cpu": cpu_name(), "rows": rows}, indent=2))
    print(f"{cpu_name()}; {args.minutes:g} minutes each; {args.pieces} pieces of 256 steps against the valid split")
    print(
        f"{'variant':<12} {'epochs':>6} {'s/epoch':>8} {'NLL':>6} {'event':>6} {'2nd+4th 16th':>13} "
        f"{'1-step':>7} {'again':>6} {'notes/step':>10} {'2-sample':>8}"
    )
    for row in rows:
        generated, real = row["generated"], row["real"]
        offbeat = sum(generated["onsets_by_position"][1::2]), sum(real["onsets_by_position"][1::2])
        event = "-" if row["valid_event_nll"] is None else f"{row['valid_event_nll']:.3f}"
        print(
            f"{row['variant']:<12} {row['epochs']:>6} {row['seconds_per_epoch']:>8} {row['valid_nll']:>6.3f} "
            f"{event:>6} {share(offbeat[0]):>6}/{share(offbeat[1]):<6} "
            f"{share(generated['one_step_note_rate']):>7} {share(generated['struck_again_rate']):>6} "
            f"{row['notes_per_step'][0]:>5.2f}/{row['notes_per_step'][1]:<4.2f} {row['two_sample_accuracy']:>8.2f}"
        )
    real = rows[0]["real"]
    one_step, again = share(real["one_step_note_rate"]), share(real["struck_again_rate"])
    print(f"valid pieces: one-step notes {one_step}, struck again {again}")


if __name__ == "__main__":
    main()
