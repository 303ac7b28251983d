"""Pack a trained run into a small self-contained model folder, and find the one musiclstm ships.

A packed folder holds config.json (its corpus path made relative), model.safetensors in float16
(half the size, read back as float32), history.csv and history.png, `held_out/` (a corpus of the
run's held-out pieces, so primers and comparisons work without the original corpus), the
evaluation JSON when one is given, and MODEL_CARD.md written from all of those, with the weights'
SHA-256 so that a changed model is a deliberate change.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from musiclstm.corpus import load_corpus, write_corpus
from musiclstm.files import read_json_object, write_bytes_atomically, write_json_atomically
from musiclstm.model import CONFIG_FILE, WEIGHTS_FILE, read_run_config
from musiclstm.sources import SourcePiece
from musiclstm.train import HISTORY_CSV, HISTORY_PNG, read_history

HELD_OUT = "held_out"
EVALUATION = "evaluation.json"
MODEL_CARD = "MODEL_CARD.md"
HELD_OUT_SPLITS = ("valid", "test")
BUNDLE_COMMAND = "make bundled-model"  # the Makefile target that trains, judges and packs the bundled model


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cpu_name() -> str:
    try:
        lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        return platform.processor() or "unknown CPU"


def export_model(run_dir: str | Path, out: str | Path, evaluation: str | Path | None = None) -> Path:
    """Pack the run in `run_dir` into `out` (replaced whole, never left half-written); return `out`.

    Raises:
        MusicLSTMError: the run, its corpus or the evaluation file cannot be read.
    """
    run_dir, out = Path(run_dir), Path(out)
    settings = read_run_config(run_dir)
    corpus = load_corpus(settings["data"]["corpus"])
    report = read_json_object(Path(evaluation)) if evaluation else None
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".export-", dir=out.parent) as scratch:
        staged = Path(scratch) / out.name
        staged.mkdir()
        weights = {name: tensor.to(torch.float16) for name, tensor in load_file(run_dir / WEIGHTS_FILE).items()}
        write_bytes_atomically(staged / WEIGHTS_FILE, save(weights))
        held_out = [piece for piece in corpus if piece.split in HELD_OUT_SPLITS]
        manifest = dict(corpus.manifest)
        for key in ("format_version", "musiclstm_version", "rolls_file", "total_frames", "pieces", "skipped"):
            manifest.pop(key, None)
        write_corpus(
            staged / HELD_OUT,
            [SourcePiece(piece.name, piece.roll) for piece in held_out],
            [piece.split for piece in held_out],
            dict(manifest, held_out_of=settings["data"]["corpus"]),
        )
        settings["data"] = dict(settings["data"], corpus=HELD_OUT)
        write_json_atomically(staged / CONFIG_FILE, settings)
        for name in (HISTORY_CSV, HISTORY_PNG):
            shutil.copy2(run_dir / name, staged / name)
        if report is not None:
            write_json_atomically(staged / EVALUATION, report)
        card = model_card(settings, corpus, read_history(run_dir), report, sha256(staged / WEIGHTS_FILE))
        write_bytes_atomically(staged / MODEL_CARD, card.encode("utf-8"))
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return out


def model_card(settings: dict, corpus, history: list[dict], report: dict | None, weights_sha256: str) -> str:
    """MODEL_CARD.md: data, split, command, time and machine, metrics, limits, checksum."""
    counts = {split: len(corpus.split(split)) for split in ("train", "valid", "test")}
    frames = {split: sum(piece.frames for piece in corpus.split(split)) for split in counts}
    best = min(history, key=lambda row: row["val_loss"]) if history else None
    model, train = settings["model"], settings["train"]
    lines = [
        "# Model card: the bundled Bach chorale model",
        "",
        "## Data",
        f"- Source: `{corpus.source}` ({corpus.manifest.get('source_kind')}), "
        f"{corpus.steps_per_beat} steps per beat (sixteenth notes), all parts merged onto the 88 piano keys.",
        f"- Split (seed {corpus.manifest.get('seed')}, by piece): "
        + ", ".join(f"{split} {counts[split]} pieces / {frames[split]:,} frames" for split in counts),
        f"- `{HELD_OUT}/` keeps the valid and test pieces, for primers and comparisons.",
        "",
        "## Model and training",
        f"- LSTM {model['lstm_units']} x 2, dense {model['dense_units']}, window {model['window']}; "
        f"dropout {model['input_dropout']} / {model['recurrent_dropout']} / {model['dense_dropout']}.",
        f"- Objective `{train['objective']}` (chunk {train['chunk']}), batch {train['batch_size']}, Adam lr "
        f"{train['lr']}, pos_weight {train['pos_weight']}, precision {train['precision']}, seed {train['seed']}, "
        f"at most {train['epochs']} epochs.",
        f"- Command: `{BUNDLE_COMMAND}` (see the Makefile); torch {settings['torch_version']}.",
    ]
    if best is not None:
        lines.append(
            f"- {len(history)} epochs in {history[-1]['minutes']:.1f} minutes; the weights are those of epoch "
            f"{best['epoch']} (validation NLL {best['val_nll']:.3f} nats per frame). Exported on {cpu_name()}."
        )
    if report is not None:
        lines += ["", *evaluation_lines(report)]
    lines += [
        "",
        "## Limits",
        "- Four-part chorales only: it knows hymn-like harmony at a walking pace, not piano textures, "
        "other styles or other meters.",
        "- Its pieces hold notes longer and repeat bars more than Bach does; it has no sense of "
        "phrase or cadence beyond a few bars.",
        "- Probabilities are calibrated by shifting each logit by -ln(pos_weight); thresholds "
        "other than 0.5 change the density.",
        "",
        "## Checksum",
        f"- `{WEIGHTS_FILE}` (float16) sha256: `{weights_sha256}`",
        "",
    ]
    return "\n".join(lines)


def evaluation_lines(report: dict) -> list[str]:
    baselines = report["baselines"]
    lines = [
        f"## Held-out {report['split']} chorales ({report['pieces']} pieces, {report['frames']:,} frames, "
        f"context `{report['context']}`)",
        "",
        "| | NLL, nats per frame | frame accuracy | F1 |",
        "| --- | --- | --- | --- |",
        f"| this model | **{report['nll']:.3f}** | {report['frame_accuracy']:.3f} | {report['f1']:.3f} |",
    ]
    for name, baseline in baselines.items():
        lines.append(
            f"| baseline: {name.replace('_', ' ')} | {baseline['nll']:.3f} | "
            f"{baseline['frame_accuracy']:.3f} | {baseline['f1']:.3f} |"
        )
    generated = report.get("generated")
    if generated:
        ours, real = generated["generated"], generated["real"]
        lines += [
            "",
            f"Generated music ({ours['pieces']} pieces of 256 steps, `{BUNDLE_COMMAND}` composes them with "
            "`--strategy free`: no key mask, so the in-key rate is the model's own) against the real held-out "
            "chorales:",
            "",
            "| | notes per step | in key | empty steps | bars repeated | pitch-class KL from train |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for label, values in (("generated", ours), ("real", real)):
            lines.append(
                f"| {label} | {values['note_density']:.2f} | {values['in_key_rate']:.2f} | "
                f"{values['empty_step_rate']:.2f} | {values['repeated_window_rate']:.2f} | "
                f"{values['pitch_class_kl_from_train']:.3f} |"
            )
    return lines
