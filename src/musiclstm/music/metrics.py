"""Numbers from rolls and predictions: the predictive metrics of the polyphonic-music literature, and the
statistics generated music is judged by.

Inputs are NumPy arrays: a model's per-frame NLL (frames,) and predicted frames (frames, 88), or the
baselines' `logits` (frames, 88), log-odds that each key sounds at each frame; the true `roll` is
(frames, 88), bool, and its `onsets` (frames, 88) bool, where known, the keys struck at each frame. Frames
from several pieces are pooled: every total is a sum over all frames of a split, divided once
(frame-weighted, not a mean of per-piece means); rhythm is pooled over notes, and texture and voice
leading (`voices`) over steps. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musiclstm.config import (
    KEY_NAMES,
    KEY_PITCH_CLASSES,
    LOWEST_PITCH,
    MODE_SCALE,
    SCALES,
    MusicLSTMError,
    key_root,
)
from musiclstm.music.grid import COMMON_TIME
from musiclstm.music.piece import Piece, roll_to_notes
from musiclstm.music.voices import voice_statistics

DENSITY_BINS = 9  # notes-per-step histogram: 0, 1, ..., 7, and 8 or more
SIXTEENTHS_PER_BEAT = 4  # a beat is a quarter note


def bernoulli_nll(logits: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Negative log-likelihood in nats of each frame under 88 independent Bernoullis, shape (frames,).

    -log p(y) = softplus(-z) where the key sounds, softplus(z) where it is silent, summed over keys;
    computed with logaddexp so that large logits do not overflow.
    """
    logits = np.asarray(logits, dtype=np.float64)
    signs = np.where(np.asarray(roll, dtype=bool), -1.0, 1.0)
    return np.logaddexp(0.0, signs * logits).sum(axis=1)


def counts(predicted: np.ndarray, roll: np.ndarray) -> dict[str, int]:
    """True and false positives and negatives of the keys predicted to sound."""
    predicted = np.asarray(predicted, dtype=bool)
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


def predictive_report(nll: np.ndarray, predicted: np.ndarray, roll: np.ndarray) -> dict:
    """The predictive metrics of a split from its pooled frames.

    Args:
        nll: each frame's negative log-likelihood in nats, (frames,).
        predicted: the frame the model predicts at each step, (frames, 88) bool.
        roll: the true frames, (frames, 88) bool.

    - `nll`: mean over frames of the NLL in nats per frame, all pieces pooled (Boulanger-Lewandowski
      et al. 2012); `nll_after_first` leaves each piece's first frame out, which needs the pieces, so
      it is added by the caller.
    - `frame_accuracy`: TP / (TP + FP + FN) of the predicted frames (Bay et al. 2009), thresholded;
      not Boulanger-Lewandowski's expected accuracy. A silent prediction of a silent roll scores 1.
    - `precision`, `recall`, `f1`; `binary_accuracy`: share of the frames x 88 decisions right.
    """
    totals = counts(predicted, roll)
    tp, fp, fn, tn = totals["tp"], totals["fp"], totals["fn"], totals["tn"]
    precision, recall = ratio(tp, tp + fp), ratio(tp, tp + fn)
    frames = int(np.asarray(roll).shape[0])
    return {
        "frames": frames,
        "nll": float(np.mean(nll)) if frames else float("nan"),
        "frame_accuracy": ratio(tp, tp + fp + fn),
        "precision": precision,
        "recall": recall,
        "f1": ratio(2 * tp, 2 * tp + fp + fn),  # 2PR / (P + R), but 0, not 1, when every note is wrong
        "binary_accuracy": ratio(tp + tn, tp + fp + fn + tn),
    }


def bernoulli_report(logits: np.ndarray, roll: np.ndarray) -> dict:
    """`predictive_report` of 88 independent Bernoullis given by their log-odds, thresholded at probability 0.5."""
    return predictive_report(bernoulli_nll(logits, roll), np.asarray(logits) > 0, roll)  # sigmoid(z) > 0.5 iff z > 0


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
        in_key = np.isin(KEY_PITCH_CLASSES, sorted(allowed_pitch_classes))
        statistics["in_key_rate"] = float(roll[:, in_key].sum() / roll.sum())
    return statistics


def marginal_baseline(train_rolls: list[np.ndarray]) -> np.ndarray:
    """Each key's probability of sounding in a training frame, Laplace add-one smoothed, shape (88,).

    p_k = (frames where key k sounds + 1) / (frames + 2). A baseline that knows no context at all.
    """
    frames = np.concatenate(train_rolls)
    return smoothed_frequencies(frames.sum(axis=0), len(frames))


def smoothed_frequencies(sounding: np.ndarray, frames: int) -> np.ndarray:
    """Each key's share of `frames` in which it sounds, given its `sounding` count, add-one smoothed (one sounding
    and one silent frame more), so that no key has probability 0 or 1 and its log-odds stay finite."""
    return (sounding + 1) / (frames + 2)


def previous_step_baseline(train_rolls: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per key, P(on | on at the step before) and P(on | off at the step before), Laplace add-one smoothed.

    A piece's first frame follows silence, as in every other protocol here. Returns two (88,) arrays.
    """
    now = np.concatenate(train_rolls)
    before = np.concatenate([shift_down(roll) for roll in train_rolls])
    on_after_on = ((before & now).sum(axis=0) + 1) / (before.sum(axis=0) + 2)
    on_after_off = ((~before & now).sum(axis=0) + 1) / ((~before).sum(axis=0) + 2)
    return on_after_on, on_after_off


def shift_down(roll: np.ndarray) -> np.ndarray:
    """The roll one step later: row t holds step t - 1, row 0 silence."""
    before = np.zeros_like(roll, dtype=bool)
    before[1:] = roll[:-1]
    return before


def baseline_logits(rolls: list[np.ndarray], train_rolls: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Both baselines' logits for every frame of `rolls`, fitted on `train_rolls`: {name: (frames, 88)}."""
    frames = sum(len(roll) for roll in rolls)
    marginal = np.broadcast_to(logit(marginal_baseline(train_rolls)), (frames, roll_width(rolls)))
    on_after_on, on_after_off = previous_step_baseline(train_rolls)
    before = np.concatenate([shift_down(roll) for roll in rolls])
    previous = logit(np.where(before, on_after_on, on_after_off))
    return {"marginal": marginal, "previous_step": previous}


def roll_width(rolls: list[np.ndarray]) -> int:
    return rolls[0].shape[1] if rolls else 88


def best_key_rate(roll: np.ndarray) -> float | None:
    """Share of sounding notes inside the best-fitting major or natural-minor scale of all 24; None when silent."""
    counts = pitch_class_counts(roll)
    if counts.sum() == 0:
        return None
    best = max(
        counts[[(root + step) % 12 for step in steps]].sum()
        for root in range(12)
        for steps in (SCALES["major"], SCALES["minor"])
    )
    return float(best / counts.sum())


def best_root(roll: np.ndarray, scale: str) -> int | None:
    """The root (0 = C .. 11 = B) whose `scale` holds most of the roll's sounding notes; None when silent.

    For the scale `mode`, the root of `best_key`."""
    if scale == MODE_SCALE:
        key = best_key(roll)
        return None if key is None else key_root(key)
    counts = pitch_class_counts(roll)
    if counts.sum() == 0:
        return None
    return int(np.argmax([counts[[(root + step) % 12 for step in SCALES[scale]]].sum() for root in range(12)]))


def best_key(roll: np.ndarray) -> str | None:
    """The major or minor key whose Krumhansl-Kessler profile best correlates with the roll's pitch classes,
    weighted by how long each sounds (Krumhansl 1990's key-finding), such as 'A minor'; None when silent.

    Counting notes into scales cannot tell a minor key from its relative major (the same seven notes);
    the profiles weigh the tonic and its triad, which can.
    """
    return key_of_counts(pitch_class_counts(roll))


def key_of_counts(counts: np.ndarray) -> str | None:
    """`best_key` of pitch-class counts (12,), C first, kept as music arrives (live); None when all are 0.

    The 24 correlations are one matrix product (a live step cannot spare the milliseconds of 24 calls);
    counts all alike correlate with no key, and give C major.
    """
    if counts.sum() == 0:
        return None
    centred = counts - counts.mean()
    spread = np.linalg.norm(centred)
    fits = KEY_TEMPLATES @ centred / spread if spread > 0 else np.zeros(len(KEY_TEMPLATES))
    mode, root = divmod(int(np.argmax(fits)), 12)
    return f"{KEY_NAMES[root]} {list(KEY_PROFILES)[mode]}"


KEY_PROFILES = {  # Krumhansl and Kessler 1982: how well each pitch class fits a key, from its tonic (C) up
    "major": np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88]),
    "minor": np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17]),
}
# each key's profile, centred and scaled to length 1: the majors on C..B, then the minors, shape (24, 12)
KEY_TEMPLATES = np.stack([np.roll(profile, root) for profile in KEY_PROFILES.values() for root in range(12)])
KEY_TEMPLATES = KEY_TEMPLATES - KEY_TEMPLATES.mean(axis=1, keepdims=True)
KEY_TEMPLATES /= np.linalg.norm(KEY_TEMPLATES, axis=1, keepdims=True)


def pitch_class_counts(roll: np.ndarray) -> np.ndarray:
    """How many sounding key-steps fall on each pitch class, C first, shape (12,)."""
    return np.bincount(KEY_PITCH_CLASSES, weights=np.asarray(roll, dtype=bool).sum(axis=0), minlength=12)


def logit(probability: np.ndarray) -> np.ndarray:
    """The log-odds log(p / (1 - p)) of probabilities strictly between 0 and 1 (numpy alone: scipy costs a second
    to import, and every command imports this module)."""
    probability = np.asarray(probability, dtype=np.float64)
    return np.log(probability) - np.log1p(-probability)


def kl_divergence(p_counts: np.ndarray, q_counts: np.ndarray) -> float:
    """KL(P || Q) in nats between two histograms, each add-one smoothed so that no bin is empty."""
    p = (p_counts + 1) / (p_counts + 1).sum()
    q = (q_counts + 1) / (q_counts + 1).sum()
    return float(np.sum(p * np.log(p / q)))


def repeated_window_rate(roll: np.ndarray, window: int) -> float:
    """Share of a piece's non-silent `window`-step windows (one per step) that already appeared earlier in it.

    High values flag loops: a degenerate piece repeating one chord scores close to 1. 0 for a silent roll.
    """
    roll = np.asarray(roll, dtype=bool)
    seen, repeated, counted = set(), 0, 0
    for start in range(0, max(len(roll) - window + 1, 0)):
        block = roll[start : start + window]
        if not block.any():
            continue
        key = np.packbits(block).tobytes()
        counted += 1
        repeated += key in seen
        seen.add(key)
    return repeated / counted if counted else 0.0


def marked_phrase_ends(pieces: Sequence[Piece]) -> list[tuple[tuple[int, int], ...]] | None:
    """Each piece's marked phrase ends (its grid's), or None where no piece marks any: nothing to count."""
    return [piece.grid.phrase_ends for piece in pieces] if any(piece.grid.phrase_ends for piece in pieces) else None


def music_statistics(pieces: Sequence[Piece], with_onsets: bool = True) -> dict:
    """Describe a set of pieces as a whole: the numbers generated music is judged by, pooled over pieces.

    Density, polyphony and empty steps are frame-weighted over all pieces; in-key and repeated-window
    rates are means over pieces (one bar of the piece's own metre is the window); the pitch-class
    histogram is normalised to sum to 1, and so is the notes-per-step histogram (its last bin:
    DENSITY_BINS - 1 or more); `rhythm` is `rhythm_statistics` of the pieces, their notes told apart by
    their onsets when `with_onsets`, else read as held runs of steps; `voices` is `voices.voice_statistics` of
    their rolls on their grid (texture, parallel fifths and octaves, the top voice, held chords, and the
    marked phrase ends where some piece's grid has them).

    Raises:
        MusicLSTMError: the pieces lie on grids of different steps per beat, whose steps cannot be pooled.
    """
    rolls = [piece.roll for piece in pieces]
    frames = np.concatenate(rolls) if rolls else np.zeros((0, 88), dtype=bool)
    per_step = np.bincount(np.minimum(frames.sum(axis=1), DENSITY_BINS - 1), minlength=DENSITY_BINS)
    pooled = piece_statistics(frames)
    sounding = np.flatnonzero(frames.any(axis=0))
    key_rates = [rate for rate in (best_key_rate(roll) for roll in rolls) if rate is not None]
    counts = pitch_class_counts(frames)
    repeated = [repeated_window_rate(piece.roll, piece.grid.steps_per_bar) for piece in pieces]
    rhythm = rhythm_statistics(pieces, with_onsets)  # refuses pieces on different grids
    steps_per_beat = rhythm["steps_per_beat"] or COMMON_TIME.steps_per_beat  # any, where there are no pieces
    return {
        "pieces": len(rolls),
        "frames": int(len(frames)),
        "note_density": pooled["note_density"],
        "polyphony": pooled["polyphony"],
        "empty_step_rate": pooled["empty_step_rate"],
        "pitch_range": [int(sounding[0] + LOWEST_PITCH), int(sounding[-1] + LOWEST_PITCH)] if sounding.size else None,
        "pitch_class_histogram": (counts / counts.sum()).round(4).tolist() if counts.sum() else [0.0] * 12,
        "notes_per_step_histogram": (per_step / max(len(frames), 1)).round(4).tolist(),
        "in_key_rate": float(np.mean(key_rates)) if key_rates else None,
        "repeated_window_rate": float(np.mean(repeated)) if repeated else 0.0,
        "rhythm": rhythm,
        "voices": voice_statistics(rolls, steps_per_beat, marked_phrase_ends(pieces)),
    }


def rhythm_statistics(pieces: Sequence[Piece], with_onsets: bool = True) -> dict:
    """Describe the rhythm of a set of pieces, pooled over their notes: where in the beat notes start, how long
    they last, how often a key is struck again.

    Notes are `roll.roll_to_notes`'s: with onsets, a key struck while it sounds starts a new note; without, a
    held run of steps is one note (`with_onsets` False: a caller whose pieces do not all know their strikes reads
    every note one way). A note sounding at a piece's first step starts there.

    - `onsets_by_position`: share of notes starting on each sixteenth of the beat, the beat's first sixteenth
      first (`position_unit` "sixteenth": 4 shares; a step between two sixteenths counts with the one before it),
      or, where steps per beat is not a multiple of 4, on each step of the beat (`position_unit` "step").
      A beat is a quarter note; a step's place in it is its piece's grid's (a cut piece keeps its beats).
    - `one_step_note_rate`: share of notes lasting one step; `mean_note_beats`: mean note length in beats.
    - `struck_again_rate`: share of notes starting exactly where a note of the same pitch ends (the key struck
      again without a rest); None without onsets, for then no two notes of a key touch.
    No notes (no pieces, or silence): the shares and the mean are None.

    Raises:
        MusicLSTMError: the pieces lie on grids of different steps per beat, whose steps cannot be pooled.
    """
    grids = sorted({piece.grid.steps_per_beat for piece in pieces})
    if len(grids) > 1:
        raise MusicLSTMError(f"rhythm statistics need one grid, not pieces at {grids} steps per beat")
    steps_per_beat = grids[0] if grids else None
    has_onsets = bool(pieces) and with_onsets
    notes = np.concatenate([np.zeros((0, 3), np.int64), *(note_rhythm(piece, has_onsets) for piece in pieces)])
    lengths, places, struck_again = notes.T  # (notes,) each
    by_sixteenth = steps_per_beat is not None and steps_per_beat % SIXTEENTHS_PER_BEAT == 0
    result = {
        "notes": len(notes),
        "steps_per_beat": steps_per_beat,
        "position_unit": "sixteenth" if by_sixteenth else "step",
        "onsets_by_position": None,
        "one_step_note_rate": None,
        "mean_note_beats": None,
        "struck_again_rate": None,
    }
    if not len(notes):
        return result
    if by_sixteenth:
        positions = np.bincount(places // (steps_per_beat // SIXTEENTHS_PER_BEAT), minlength=SIXTEENTHS_PER_BEAT)
    else:
        positions = np.bincount(places, minlength=steps_per_beat)
    result["onsets_by_position"] = (positions / len(notes)).round(4).tolist()
    result["one_step_note_rate"] = float(np.mean(lengths == 1))
    result["mean_note_beats"] = float(lengths.mean() / steps_per_beat)
    if has_onsets:
        result["struck_again_rate"] = float(struck_again.mean())
    return result


def note_rhythm(piece: Piece, has_onsets: bool) -> np.ndarray:
    """Each note of a piece as (length in steps, its start's place in its beat in steps, 1 if it starts where
    a note of its pitch ends else 0), shape (notes, 3); notes told apart by the piece's onsets if `has_onsets`."""
    notes = np.array(roll_to_notes(piece.roll, piece.onsets if has_onsets else None), dtype=np.int64).reshape(-1, 3)
    pitches, starts, ends = notes.T
    places = piece.grid.place_in_bar(starts)[0] % piece.grid.steps_per_beat
    span = len(piece.roll) + 1  # one (pitch, step) code per pair: ends run to len(roll)
    struck_again = np.isin(pitches * span + starts, pitches * span + ends)
    return np.stack([ends - starts, places, struck_again], axis=1)
