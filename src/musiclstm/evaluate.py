"""Score a trained model on a corpus split: every frame of every piece predicted from its left context.

Each piece is read after `window` frames of silence (the lead-in training used), so its first frame
is predicted from silence and is scored too. Two contexts:
- `stateful`: the LSTM state is carried through the whole piece, one step per frame; the protocol
  of the polyphonic-music literature (Boulanger-Lewandowski et al. 2012; Bai et al. 2018).
- `window`: each frame is predicted from exactly the `window` frames before it, the state starting
  from zero each time; the seed's view, `window` steps of work per frame.
The two agree on a piece's first frame, read after `window` frames of silence in both.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import CONTEXTS, MusicLSTMError
from musiclstm.corpus import Corpus, load_corpus
from musiclstm.metrics import bernoulli_nll, predictive_report, weighted_loss
from musiclstm.model import MusicLSTM, load_model, read_run_config

WINDOWS_PER_BATCH = 256


def check_context(context: str) -> None:
    if context not in CONTEXTS:
        raise MusicLSTMError(f"unknown context '{context}': choose one of {', '.join(CONTEXTS)}")


@torch.inference_mode()
def piece_logits(model: MusicLSTM, roll: np.ndarray, context: str) -> np.ndarray:
    """The model's logits for every frame of a piece, shape (frames, 88), each from the frames before it."""
    check_context(context)
    window, frames = model.config.window, len(roll)
    padded = torch.zeros(window + frames, roll.shape[1])
    padded[window:] = torch.from_numpy(np.asarray(roll, dtype=np.float32))
    if context == "stateful":
        logits, _ = model(padded[None, : window + frames - 1], every_step=True)  # (1, window + frames - 1, 88)
        return logits[0, window - 1 :].numpy()
    windows = padded.unfold(0, window, 1)[:frames].transpose(1, 2)  # (frames, window, 88): frame t sees t-window..t-1
    return torch.cat([model(batch)[0] for batch in windows.split(WINDOWS_PER_BATCH)]).numpy()


def evaluate_model(
    model: MusicLSTM,
    corpus: Corpus,
    split: str = "test",
    context: str = "stateful",
    pos_weight: float = 1.0,
    progress: bool = False,
) -> dict:
    """Predictive metrics of a model on one split of a corpus, all frames pooled.

    A model trained with `pos_weight` w is scored on its calibrated probabilities, logits - ln w (see
    `train.calibrate`); the training loss in the report uses the raw logits, as training did.
    Returns the report of `metrics.predictive_report` plus `nll_after_first` (each piece's first frame
    left out, the convention of Bai et al. 2018's code), `loss`, `pieces`, `split`, `context`, `pos_weight`.
    """
    check_context(context)
    pieces = corpus.split(split)
    if not pieces:
        raise MusicLSTMError(f"{corpus.path}: the '{split}' split has no pieces")
    model.eval()
    logits, rolls = [], []
    for piece in tqdm(pieces, desc=f"scoring {split} ({context})", unit="piece", disable=not progress):
        rolls.append(piece.roll)
        logits.append(piece_logits(model, rolls[-1], context))
    raw, all_rolls = np.concatenate(logits), np.concatenate(rolls)
    shift = math.log(pos_weight)
    after_first = np.concatenate([bernoulli_nll(z[1:] - shift, r[1:]) for z, r in zip(logits, rolls, strict=True)])
    report = predictive_report(raw - shift, all_rolls)
    report.update(
        loss=weighted_loss(raw, all_rolls, pos_weight),
        pos_weight=pos_weight,
        nll_after_first=float(after_first.mean()) if after_first.size else float("nan"),
        pieces=len(pieces),
        split=split,
        context=context,
        window=model.config.window,
        corpus=str(corpus.path),
    )
    return report


def evaluate_run(
    run_dir: str | Path, corpus_dir: str | Path, split: str = "test", context: str | None = None, progress: bool = False
) -> dict:
    """Evaluate a run folder's model; `context` defaults to the one its training taught (config.json)."""
    settings = read_run_config(run_dir)
    corpus = load_corpus(corpus_dir)
    if corpus.steps_per_beat != settings["data"]["steps_per_beat"]:
        raise MusicLSTMError(
            f"{corpus_dir}: {corpus.steps_per_beat} steps per beat, but the model in {run_dir} learned "
            f"{settings['data']['steps_per_beat']}; build the corpus with --steps-per-beat "
            f"{settings['data']['steps_per_beat']}"
        )
    report = evaluate_model(
        load_model(run_dir),
        corpus,
        split,
        context or settings["context"],
        settings["train"]["pos_weight"],
        progress,
    )
    report["model"] = str(run_dir)
    return report
