"""Measure how the voices move in generated music, for ways of composing with the same model.

For each variant of the generation settings, composes `--pieces` pieces of 256 steps with one seed
(primers drawn from the held-out pieces, as `musiclstm generate` does) and judges the steps after
their primers against the real pieces of a split (`--split valid` to choose; `test` to report what
was chosen): the voice statistics (`music.voices`), onsets on the off sixteenths, one-step notes,
and the two-sample classifier's balanced accuracy. Prints a table and writes `<out>/voices.json`.
Asserts nothing.

    .venv/bin/python benchmarks/bench_voices.py --data data/bach --split valid --out runs/voices
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from musiclstm import generate, load_corpus
from musiclstm.composing.saving import save_pieces
from musiclstm.judging.comparison import compare_generated
from musiclstm.network.bundle import cpu_name

VARIANTS = {  # name: generation settings beside the defaults
    "before: per-key T, major mask": {
        "temperature_on": "key",
        "scale": "major",
        "avoid_parallels": False,
        "keep_voices": False,
    },
    "per-key T, mode mask": {"temperature_on": "key", "avoid_parallels": False, "keep_voices": False},
    "whole-step T, mode mask": {"avoid_parallels": False, "keep_voices": False},
    "+ no parallels": {"keep_voices": False},
    "+ keep voices (defaults)": {},
    "defaults, no mask": {"scale": "chromatic"},
    "defaults, T 0.6": {"temperature": 0.6},
    "defaults, T 1.0": {"temperature": 1.0},
    "defaults, T 1.0, no mask": {"temperature": 1.0, "scale": "chromatic"},
}
ROWS = {  # column: (side's entry, key) and how it is written
    "4 notes %": ("voices", "four_note_steps", 100),
    "3 notes %": ("voices", "three_note_steps", 100),
    "count changes/step": ("voices", "count_changes_per_step", 1),
    "parallels/100": ("voices", "parallels_per_100_changes", 1),
    "top 1-2 st %": ("voices", "top_steps_share", 100),
    "top leaps 5+ %": ("voices", "top_leaps_share", 100),
    "phrase ends/64": ("voices", "phrase_ends_per_64_steps", 1),
    "one-step notes %": ("rhythm", "one_step_note_rate", 100),
}


def judged_row(side: dict) -> dict:
    """The table's figures of one side of a comparison."""
    row = {name: side[entry][key] * scale for name, (entry, key, scale) in ROWS.items()}
    onsets = side["rhythm"]["onsets_by_position"]
    row["off 16ths %"] = 100 * (onsets[1] + onsets[3]) if onsets else None
    return row


def measure(model: str | None, data: Path, split: str, out: Path, name: str, settings: dict, pieces: int, seed: int):
    """Compose one variant's pieces and judge them against the split's real pieces."""
    started = time.perf_counter()
    composition = generate(model, num_outputs=pieces, length=256, seed=seed, **settings)
    seconds = time.perf_counter() - started
    folder = out / name.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
    save_pieces(composition, folder, audio=False, replace=True)
    judged = compare_generated(folder, load_corpus(data), split)
    return {
        "variant": name,
        "settings": settings,
        "seconds": round(seconds, 1),
        "two_sample_accuracy": judged["two_sample_accuracy"],
        "generated": judged_row(judged["generated"]),
        "real": judged_row(judged["real"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="a run or model folder (default: the bundled model)")
    parser.add_argument("--data", type=Path, default=Path("data/bach"))
    parser.add_argument("--split", default="valid")
    parser.add_argument("--out", type=Path, default=Path("runs/voices"))
    parser.add_argument("--pieces", type=int, default=24)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = [
        measure(args.model, args.data, args.split, args.out, name, VARIANTS[name], args.pieces, args.seed)
        for name in args.variants
    ]
    columns = ["two-sample", *ROWS, "off 16ths %"]
    print(f"{args.pieces} pieces, seed {args.seed}, against the {args.split} split; {cpu_name()}")
    print(f"{'':36}" + "".join(f"{column:>19}" for column in columns))
    print(f"{'real (' + args.split + ')':36}" + "".join(f"{results[0]['real'][c]:>19.2f}" for c in columns[1:]))
    for result in results:
        figures = [result["two_sample_accuracy"], *(result["generated"][c] for c in columns[1:])]
        print(f"{result['variant']:36}" + "".join(f"{figure:>19.2f}" for figure in figures))
    (args.out / "voices.json").write_text(json.dumps({"cpu": cpu_name(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
