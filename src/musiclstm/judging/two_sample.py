"""The machine's "real or computer?": can a simple classifier tell generated passages from real ones?

A classifier two-sample test (Lopez-Paz and Oquab, ICLR 2017): cut both sets of pieces into 4-bar
passages, describe each by a few musical features, and cross-validate a logistic regression that
tells the two apart. Passages of one piece are never split between training and testing folds, or
the classifier would learn pieces, not sources. Its balanced accuracy (the mean of the two classes'
recalls, so unequal counts do not matter) is 0.5 when the two sets cannot be told apart and 1.0
when every passage is recognised. Rolls are (steps, 88) bool; nothing here imports torch.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy

from musiclstm.config import LOWEST_PITCH
from musiclstm.music.grid import Grid
from musiclstm.music.metrics import best_key_rate, pitch_class_counts
from musiclstm.music.piece import bottom_line, roll_to_notes, top_line

PASSAGE_BARS = 4
MAX_FOLDS = 5
FEATURES = {  # name: what it measures, per passage
    "note_density": "sounding keys per step",
    "polyphony": "sounding keys per step that sounds",
    "empty_steps": "share of silent steps",
    "onsets_per_step": "notes starting per step",
    "note_length": "mean note length in steps",
    "pitch_mean": "mean MIDI pitch of sounding keys",
    "pitch_range": "highest minus lowest sounding pitch",
    "top_line_leap": "mean semitones moved by the highest note from step to step",
    "bass_line_leap": "mean semitones moved by the lowest note from step to step",
    "held_steps": "share of steps equal to the step before",
    "repeated_bars": "share of bars equal to an earlier bar of the passage",
    "pitch_class_entropy": "entropy of the pitch-class histogram, in bits",
    "in_key": "share of notes in the best-fitting major or minor scale",
    "dissonant_steps": "share of sounding steps holding a semitone or tritone",
}


def line_leap(lines: np.ndarray) -> float:
    """Mean absolute change of a voice (one pitch per sounding step, NaN where silent) between sounding steps."""
    sounding = lines[~np.isnan(lines)]
    return float(np.abs(np.diff(sounding)).mean()) if len(sounding) > 1 else 0.0


def passage_features(roll: np.ndarray, steps_per_bar: int) -> np.ndarray:
    """The FEATURES of one passage, in their order."""
    roll = np.asarray(roll, dtype=bool)
    per_step = roll.sum(axis=1)
    sounding = per_step > 0
    keys = np.arange(roll.shape[1]) + LOWEST_PITCH
    top = np.where(sounding, top_line(roll) + LOWEST_PITCH, np.nan)  # NaN where silent
    bass = np.where(sounding, bottom_line(roll) + LOWEST_PITCH, np.nan)
    lengths = np.array([stop - start for _, start, stop in roll_to_notes(roll)])
    counts = pitch_class_counts(roll)
    shares = counts[counts > 0] / counts.sum() if counts.sum() else np.ones(1)
    bars = [roll[start : start + steps_per_bar].tobytes() for start in range(0, len(roll), steps_per_bar)]
    classes = [{int(pitch) % 12 for pitch in keys[step]} for step in roll]
    dissonant = [any((a - b) % 12 in (1, 6, 11) for a in pcs for b in pcs) for pcs in classes if pcs]
    values = {
        "note_density": per_step.mean(),
        "polyphony": per_step[sounding].mean() if sounding.any() else 0.0,
        "empty_steps": 1 - sounding.mean(),
        "onsets_per_step": len(lengths) / len(roll),
        "note_length": lengths.mean() if len(lengths) else 0.0,
        "pitch_mean": (roll * keys).sum() / roll.sum() if sounding.any() else 0.0,
        "pitch_range": np.nanmax(top) - np.nanmin(bass) if sounding.any() else 0.0,
        "top_line_leap": line_leap(top),
        "bass_line_leap": line_leap(bass),
        "held_steps": (roll[1:] == roll[:-1]).all(axis=1).mean() if len(roll) > 1 else 0.0,
        "repeated_bars": 1 - len(set(bars)) / len(bars),
        "pitch_class_entropy": entropy(shares, base=2),
        "in_key": best_key_rate(roll) or 0.0,
        "dissonant_steps": np.mean(dissonant) if dissonant else 0.0,
    }
    return np.array([values[name] for name in FEATURES], dtype=float)


def passages(rolls: list[np.ndarray], grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Every whole 4-bar passage of the pieces (from each piece's start), as features and the piece it came from."""
    steps_per_bar = grid.steps_per_bar
    length = PASSAGE_BARS * steps_per_bar
    rows, pieces = [], []
    for number, roll in enumerate(rolls):
        for start in range(0, len(roll) - length + 1, length):
            rows.append(passage_features(roll[start : start + length], steps_per_bar))
            pieces.append(number)
    return np.array(rows).reshape(-1, len(FEATURES)), np.array(pieces, dtype=int)


def two_sample_test(real: list[np.ndarray], generated: list[np.ndarray], grid: Grid, seed: int = 0) -> dict:
    """How well a cross-validated classifier tells generated passages from real ones.

    Returns `accuracy` (balanced, 0.5 = indistinguishable; None with too few pieces to cross-validate,
    `reason` then says why), the passage and piece counts, the folds, and `features`: the five that
    separate the sets most (largest standardised coefficients of the classifier fitted on all
    passages), each with its mean on both sides.
    """
    real_rows, real_pieces = passages(real, grid)
    made_rows, made_pieces = passages(generated, grid)
    result = {"passage_bars": PASSAGE_BARS, "passages": {"real": len(real_rows), "generated": len(made_rows)}}
    pieces_per_side = min(len(set(real_pieces)), len(set(made_pieces)))
    if pieces_per_side < 2:
        return dict(result, accuracy=None, reason=f"needs 2 or more pieces of {PASSAGE_BARS} bars or more on each side")
    from sklearn.linear_model import LogisticRegression  # seconds to import: only when there is a test to run
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rows = np.concatenate([real_rows, made_rows])
    is_generated = np.r_[np.zeros(len(real_rows), int), np.ones(len(made_rows), int)]
    groups = np.r_[real_pieces, made_pieces + len(real)]
    folds = min(MAX_FOLDS, pieces_per_side)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, class_weight="balanced"))
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    predicted = cross_val_predict(classifier, rows, is_generated, groups=groups, cv=splitter)
    weights = classifier.fit(rows, is_generated)[-1].coef_[0]
    ranked = np.argsort(-np.abs(weights))[:5]
    names = list(FEATURES)
    features = [
        {
            "feature": names[i],
            "meaning": FEATURES[names[i]],
            "weight": round(float(weights[i]), 3),
            "real": round(float(real_rows[:, i].mean()), 3),
            "generated": round(float(made_rows[:, i].mean()), 3),
        }
        for i in ranked
    ]
    accuracy = float(balanced_accuracy_score(is_generated, predicted))
    return dict(result, accuracy=accuracy, folds=folds, features=features)
