"""Score a trained model on a corpus split: every frame of every piece predicted from its left context.

Each piece is read after `window` frames of silence (its lead-in, as in training), so its first
frame is predicted from silence and is scored too. Two contexts:
- `stateful`: the LSTM state is carried through the whole piece, one step per frame; the protocol
  of the polyphonic-music literature (Boulanger-Lewandowski et al. 2012; Bai et al. 2018).
- `window`: each frame is predicted from exactly the `window` frames before it, the state starting
  from zero each time; the seed's view, `window` steps of work per frame.
The two agree on a piece's first frame, read after `window` frames of silence in both. The model's
head gives each frame's NLL and its predicted frame; `metrics` turns them into the report. Judging a
folder of generated music against the real pieces (`evaluate(generated=...)`) is `judging`'s job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import CONTEXTS, CorpusConfig, MusicLSTMError, check_one_of
from musiclstm.data.corpus import Corpus, build_corpus, load_corpus
from musiclstm.files import check_output_folder
from musiclstm.judging.comparison import compare_generated, format_music, plot_comparison
from musiclstm.music.grid import COMMON_TIME, Grid
from musiclstm.music.metrics import baseline_logits, bernoulli_report, predictive_report
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import piece_features, step_targets, with_lead_in
from musiclstm.network.run import load_model, model_folder, read_run_config


@torch.inference_mode()
def score_piece(
    model: MusicLSTM, events: np.ndarray, context: str, grid: Grid = COMMON_TIME
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, float]:
    """A piece's per-frame NLL of the sounding keys (frames,), of the whole step where the model predicts
    strikes (frames,; else None), the head's predicted frames (frames, 88) and its summed training loss."""
    targets_of = step_targets(torch.from_numpy(with_lead_in(np.asarray(events, dtype=np.float32), 1)))
    nll, event_nll, predicted, loss, start = [], [], [], 0.0, 0
    for features in piece_features(model, events, context, grid):
        targets, start = targets_of[start : start + len(features)], start + len(features)
        nll.append(model.frame_nll(features, targets).numpy())
        if model.strikes is not None:
            event_nll.append(model.event_nll(features, targets).numpy())
        predicted.append(model.predicted_frames(features, targets).numpy())
        loss += float(model.loss(features, targets)) * len(targets)
    events_scored = np.concatenate(event_nll) if event_nll else None
    return np.concatenate(nll), events_scored, np.concatenate(predicted), loss


def evaluate_model(
    model: MusicLSTM, corpus: Corpus, split: str = "test", context: str = "stateful", progress: bool = False
) -> dict:
    """Predictive metrics of a model on one split of a corpus, all frames pooled.

    Returns the report of `metrics.predictive_report` (its `nll`: the sounding keys', the literature's
    frame NLL) plus `nll_after_first` (each piece's first frame left out, the convention of Bai et al.
    2018's code), `event_nll` (the NLL of the keys sounding and struck, for a model with a strike head;
    else None), `loss` (the training loss), `pieces`, `split`, `context`, `head`, `pos_weight`.
    """
    check_one_of("context", context, CONTEXTS)  # now, not when the first piece is read
    pieces = corpus.split(split)
    if not pieces:
        raise MusicLSTMError(f"{corpus.path}: the '{split}' split has no pieces")
    model.eval()
    nlls, event_nlls, predicted, rolls, loss = [], [], [], [], 0.0
    for piece in tqdm(pieces, desc=f"scoring {split} ({context})", unit="piece", disable=not progress):
        rolls.append(piece.roll)
        nll, event_nll, frames, piece_loss = score_piece(model, piece.events, context, piece.grid)
        nlls.append(nll)
        event_nlls.append(event_nll)
        predicted.append(frames)
        loss += piece_loss
    all_rolls = np.concatenate(rolls)
    after_first = np.concatenate([nll[1:] for nll in nlls])
    report = predictive_report(np.concatenate(nlls), np.concatenate(predicted), all_rolls)
    report.update(
        loss=loss / len(all_rolls),
        head=model.config.head,
        pos_weight=model.head.pos_weight,
        nll_after_first=float(after_first.mean()) if after_first.size else float("nan"),
        event_nll=None if model.strikes is None else float(np.concatenate(event_nlls).mean()),
        pieces=len(pieces),
        split=split,
        context=context,
        window=model.config.window,
        corpus=str(corpus.path),
    )
    return report


def open_data(data: str | Path, steps_per_beat: int, scratch: Path) -> Corpus:
    """A corpus folder as it is, or a benchmark file (.pickle/.pkl/.json) read into a corpus in `scratch`."""
    path = Path(data)
    if path.is_file():
        build_corpus(CorpusConfig(str(path), steps_per_beat=steps_per_beat), scratch / "corpus")
        return load_corpus(scratch / "corpus")
    return load_corpus(path)


def baseline_reports(corpus: Corpus, split: str) -> dict:
    """The two baselines of `metrics`, fitted on the train split, scored on `split` like the model."""
    train_rolls = [piece.roll for piece in corpus.split("train")]
    if not train_rolls:
        raise MusicLSTMError(
            f"{corpus.path}: no train split to fit the baselines on; use the whole corpus "
            "(for the bundled model: musiclstm data --source bach --out data/bach)"
        )
    rolls = [piece.roll for piece in corpus.split(split)]
    frames = np.concatenate(rolls)
    return {name: bernoulli_report(logits, frames) for name, logits in baseline_logits(rolls, train_rolls).items()}


def evaluate(
    data: str | Path,
    model: str | Path | None = None,
    split: str = "test",
    context: str | None = None,
    generated: str | Path | None = None,
    plots: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate a model on a corpus split, beside the two baselines.

    Args:
        data: a corpus folder or a benchmark file.
        model: a run or model folder (None: the bundled model).
        split: the split to score.
        context: `stateful` or `window` (None: the one the model's training taught, in config.json).
        generated: a folder of MIDI files to judge against the split's real music.
        plots: a folder for pitch-class and density figures, generated beside real (made, with the folders
            above it, when missing).

    Raises:
        MusicLSTMError: `plots` without `generated`, or a `plots` folder that cannot be written, refused
            before any work; and what the corpus, the model or the generated folder do not allow.
    """
    if plots is not None:
        if generated is None:
            raise MusicLSTMError(f"{plots}: the plots draw generated music beside real; give --generated too")
        check_output_folder(plots)
    folder = model_folder(model)
    run_config = read_run_config(folder)
    steps_per_beat = run_config["data"]["steps_per_beat"]
    with tempfile.TemporaryDirectory() as scratch:
        corpus = open_data(data, steps_per_beat, Path(scratch))
        if corpus.steps_per_beat != steps_per_beat:
            raise MusicLSTMError(
                f"{data}: {corpus.steps_per_beat} steps per beat, but the model in {folder} learned "
                f"{steps_per_beat}; build the corpus with --steps-per-beat {steps_per_beat}"
            )
        baselines = baseline_reports(corpus, split)  # before the model's scoring: a corpus without train fails fast
        judged = compare_generated(generated, corpus, split) if generated is not None else None
        report = evaluate_model(load_model(folder), corpus, split, context or run_config["context"], progress)
        report.update(model=str(folder), corpus=str(data), baselines=baselines)
        if judged is not None:
            report["generated"] = judged
        if plots is not None:
            report["plots"] = plot_comparison(report.get("generated"), Path(plots))
    return report


def format_report(report: dict) -> str:
    """Render an evaluation report for the terminal, naming the context that produced it."""
    context = (
        "state carried through each whole piece"
        if report["context"] == "stateful"
        else f"each frame from the {report['window']} before it"
    )
    lines = [
        f"{report['model']} on the {report['split']} split of {report['corpus']}: {report['pieces']} pieces, "
        f"{report['frames']} frames; context: {report['context']} ({context})",
        f"  {'':<24} {'NLL':>8} {'frame acc':>10} {'precision':>10} {'recall':>8} {'F1':>7}",
    ]
    rows = [("model", report)] + [(f"baseline: {name}", row) for name, row in report["baselines"].items()]
    for name, row in rows:
        lines.append(
            f"  {name:<24} {row['nll']:>8.3f} {row['frame_accuracy']:>10.3f} {row['precision']:>10.3f} "
            f"{row['recall']:>8.3f} {row['f1']:>7.3f}"
        )
    scored = "the NADE head's exact NLL" if report.get("head") == "nade" else "calibrated probabilities"
    predicted = "of its greedy frame" if report.get("head") == "nade" else "at 0.5"
    lines += [
        f"  NLL: nats per frame, {scored}; frame accuracy: TP / (TP + FP + FN) {predicted} (Bay et al. 2009)",
        f"  model: NLL without each piece's first frame {report['nll_after_first']:.3f}; binary accuracy "
        f"{report['binary_accuracy']:.4f} (not a quality bar); training loss {report['loss']:.4f}",
    ]
    if report.get("event_nll") is not None:
        lines.append(f"  model: NLL of each whole step (keys sounding and keys struck again) {report['event_nll']:.3f}")
    if "generated" in report:
        lines += format_music(report["generated"])
    for plot in report.get("plots", []):
        lines.append(f"  plot: {plot}")
    return "\n".join(lines)
