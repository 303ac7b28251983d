"""Numbers from rolls and predictions: the predictive metrics of the polyphonic-music literature.

Inputs are NumPy arrays: `logits` of shape (frames, 88), the model's log-odds that each key sounds
at each frame, and the true `roll` of shape (frames, 88), bool. Frames from several pieces are
pooled: every total is a sum over all frames of a split, divided once (frame-weighted, not a mean
of per-piece means). Nothing here imports torch.
"""

from __future__ import annotations

import numpy as np

from musiclstm.config import LOWEST_PITCH

THRESHOLD = 0.5  # a key sounds when its probability exceeds this


def bernoulli_nll(logits: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Negative log-likelihood in nats of each frame under 88 independent Bernoullis, shape (frames,).

    -log p(y) = softplus(-z) where the key sounds, softplus(z) where it is silent, summed over keys;
    computed with logaddexp so that large logits do not overflow.
    """
    logits = np.asarray(logits, dtype=np.float64)
    signs = np.where(np.asarray(roll, dtype=bool), -1.0, 1.0)
    return np.logaddexp(0.0, signs * logits).sum(axis=1)


def weighted_loss(logits: np.ndarray, roll: np.ndarray, pos_weight: float) -> float:
    """The training loss: per-key binary cross-entropy, a sounding key weighted `pos_weight`, mean over all."""
    roll = np.asarray(roll, dtype=bool)
    signs = np.where(roll, -1.0, 1.0)
    per_key = np.logaddexp(0.0, signs * np.asarray(logits, dtype=np.float64))
    return float((per_key * np.where(roll, pos_weight, 1.0)).mean()) if roll.size else float("nan")


def counts(logits: np.ndarray, roll: np.ndarray) -> dict[str, int]:
    """True and false positives and negatives of the keys predicted to sound (probability > 0.5)."""
    predicted = np.asarray(logits) > 0  # sigmoid(z) > 0.5 exactly when z > 0
    roll = np.asarray(roll, dtype=bool)
    return {
        "tp": int(np.sum(predicted & roll)),
        "fp": int(np.sum(predicted & ~roll)),
        "fn": int(np.sum(~predicted & roll)),
        "tn": int(np.sum(~predicted & ~roll)),
    }


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, or 1.0 when both are zero (nothing to find and nothing claimed is perfect)."""
    if denominator == 0:
        return 1.0 if numerator == 0 else float("nan")
    return numerator / denominator


def predictive_report(logits: np.ndarray, roll: np.ndarray) -> dict:
    """The predictive metrics of a split from its pooled frames.

    - `nll`: mean over frames of the summed Bernoulli NLL over the 88 keys, nats per frame
      (Boulanger-Lewandowski et al. 2012); `nll_after_first` leaves each piece's first frame out,
      which needs `first_frames`, so it is added by the caller.
    - `frame_accuracy`: TP / (TP + FP + FN) at probability 0.5 (Bay et al. 2009), thresholded;
      not Boulanger-Lewandowski's expected accuracy. A silent prediction of a silent roll scores 1.
    - `precision`, `recall`, `f1` at 0.5; `binary_accuracy`: share of the frames x 88 decisions right.
    """
    totals = counts(logits, roll)
    tp, fp, fn, tn = totals["tp"], totals["fp"], totals["fn"], totals["tn"]
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    frames = int(np.asarray(roll).shape[0])
    return {
        "frames": frames,
        "nll": float(bernoulli_nll(logits, roll).mean()) if frames else float("nan"),
        "frame_accuracy": ratio(tp, tp + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * precision * recall, precision + recall),
        "binary_accuracy": ratio(tp + tn, tp + fp + fn + tn),
    }


def piece_statistics(roll: np.ndarray, allowed_pitch_classes: frozenset[int] | None = None) -> dict:
    """Describe a (steps, 88) roll: how dense, how polyphonic, how much in the key.

    - `note_density`: sounding keys per step, silent steps included (the seed aims at 2-4).
    - `polyphony`: sounding keys per step that sounds at all.
    - `empty_step_rate`: share of steps where nothing sounds.
    - `in_key_rate`: share of sounding key-steps whose pitch class is allowed (None without a key).
    A silent or empty roll gives density 0, polyphony 0, and in-key rate None.
    """
    roll = np.asarray(roll, dtype=bool)
    per_step = roll.sum(axis=1)
    sounding_steps = int((per_step > 0).sum())
    statistics = {
        "steps": int(len(roll)),
        "note_density": float(per_step.mean()) if len(roll) else 0.0,
        "polyphony": float(per_step.sum() / sounding_steps) if sounding_steps else 0.0,
        "empty_step_rate": float(1 - sounding_steps / len(roll)) if len(roll) else 0.0,
        "in_key_rate": None,
    }
    if allowed_pitch_classes is not None and roll.any():
        pitch_classes = (np.arange(roll.shape[1]) + LOWEST_PITCH) % 12
        in_key = np.isin(pitch_classes, sorted(allowed_pitch_classes))
        statistics["in_key_rate"] = float(roll[:, in_key].sum() / roll.sum())
    return statistics
