"""Texture and voice leading of piano rolls: how many notes sound, how the top voice moves, parallel fifths and
octaves between four voices, and where the music holds a chord.

Inputs are rolls, (steps, 88) bool, column k = MIDI pitch 21 + k, read as the keys sounding at each step: a key
held and a key struck again at once look the same. Every figure is pooled over all rolls (a sum over the rolls'
steps, divided once), and no transition runs from one roll into the next, so generated and real music are
counted the same way. The voices of a chord are its keys sorted low to high: nothing here follows a part
through a score. Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from musiclstm.config import MusicLSTMError

CHORD_NOTES = 4  # the voices of a four-part chord, whose motion is checked for parallels
MOST_NOTES_COUNTED = 5  # notes-per-step shares: 0, 1, ..., 4, and 5 or more
PERFECT_CLASSES = (0, 7)  # interval classes in semitones mod 12 whose parallels are counted: octave, fifth
STEPWISE = (1, 2)  # top-voice moves in semitones counted as steps
LEAP = 5  # top-voice moves of this many semitones or more are leaps
HELD_CHORD_NOTES = 3  # a held chord sounds at least this many keys
HOLD_BEATS = 2  # a held chord lasts at least this many beats
PER_STEPS = 64  # phrase ends and fermatas are counted per this many steps


def voice_statistics(
    rolls: Sequence[np.ndarray],
    steps_per_beat: int,
    phrase_ends: Sequence[Sequence[tuple[int, int]]] | None = None,
) -> dict:
    """Describe the texture and voice leading of rolls, pooled over all of them.

    Args:
        rolls: (steps, 88) bool each, the keys sounding at each step.
        steps_per_beat: the rolls' grid; a held chord lasts 2 * steps_per_beat steps or more.
        phrase_ends: per roll, the (first step, end step) spans of its marked phrase ends (fermatas), or None.

    - `steps`: steps counted. `notes_per_step`: share of steps sounding exactly 0, 1, 2, 3, 4, and 5 or more
      keys (6 shares); `three_note_steps`, `four_note_steps`: the shares of exactly 3 and exactly 4.
    - `count_changes_per_step`: share of step-to-step transitions (step t-1 to t of one roll) at which the
      number of sounding keys changes.
    - `chord_changes`: transitions t-1 to t where both steps sound exactly 4 keys and the keys differ; the voices
      are the 4 keys sorted low to high, voice i at t-1 going to voice i at t. `parallels`: over those changes
      and the 6 pairs of voices, the pairs whose two voices both move, in the same direction, and stand a
      perfect fifth apart (interval mod 12 == 7) at both steps or an octave or compound octave apart (interval
      mod 12 == 0, interval > 0) at both, compound intervals included (a fifth to a twelfth counts); a pair
      counts at most once per change. `parallels_per_100_changes`: 100 * parallels / chord_changes.
    - `top_moves`: transitions where both steps sound and the highest sounding key changes; `top_steps_share`:
      the share of those moving 1 or 2 semitones, `top_leaps_share` 5 semitones or more.
    - `held_chords`: runs of 2 * steps_per_beat or more consecutive steps of a roll sounding the same set of 3 or
      more keys, each run counted once; `phrase_ends_per_64_steps`: 64 * held_chords / steps.
    - `fermatas`: the spans of `phrase_ends`, counted; `fermatas_per_64_steps`: 64 * fermatas / steps. Both None
      when `phrase_ends` is None.
    A share or rate whose denominator is 0 (no steps, no transitions, no chord changes, no top moves) is None;
    the counts are then 0. So no rolls at all give `steps` 0, every count 0, every share and rate None.

    Raises:
        MusicLSTMError: `phrase_ends` does not give one sequence of spans per roll.
    """
    rolls = [np.asarray(roll, dtype=bool) for roll in rolls]
    if phrase_ends is not None and len(phrase_ends) != len(rolls):
        raise MusicLSTMError(f"voice statistics: phrase ends given for {len(phrase_ends)} rolls, not {len(rolls)}")
    steps = sum(len(roll) for roll in rolls)
    per_step = np.concatenate([np.zeros(0, np.int64), *(roll.sum(axis=1) for roll in rolls)])
    shares = np.bincount(np.minimum(per_step, MOST_NOTES_COUNTED), minlength=MOST_NOTES_COUNTED + 1) / max(steps, 1)
    transitions = sum(max(len(roll) - 1, 0) for roll in rolls)
    count_changes = sum(int(np.count_nonzero(np.diff(roll.sum(axis=1)))) for roll in rolls)
    chord_changes, parallels = np.sum([parallel_motion(roll) for roll in rolls] or [(0, 0)], axis=0)
    moves = np.abs(np.concatenate([np.zeros(0, np.int64), *(top_moves(roll) for roll in rolls)]))
    n_held = sum(held_chords(roll, HOLD_BEATS * steps_per_beat) for roll in rolls)
    n_fermatas = None if phrase_ends is None else sum(len(spans) for spans in phrase_ends)
    return {
        "steps": steps,
        "notes_per_step": shares.round(4).tolist() if steps else None,
        "three_note_steps": float(shares[3]) if steps else None,
        "four_note_steps": float(shares[4]) if steps else None,
        "count_changes_per_step": share(count_changes, transitions),
        "chord_changes": int(chord_changes),
        "parallels": int(parallels),
        "parallels_per_100_changes": share(100 * parallels, chord_changes),
        "top_moves": len(moves),
        "top_steps_share": share(np.isin(moves, STEPWISE).sum(), len(moves)),
        "top_leaps_share": share((moves >= LEAP).sum(), len(moves)),
        "held_chords": n_held,
        "phrase_ends_per_64_steps": share(PER_STEPS * n_held, steps),
        "fermatas": n_fermatas,
        "fermatas_per_64_steps": None if n_fermatas is None else share(PER_STEPS * n_fermatas, steps),
    }


def share(numerator: float, denominator: float) -> float | None:
    """numerator / denominator as a float, or None when the denominator is 0 (nothing to count)."""
    return float(numerator / denominator) if denominator else None


def parallel_motion(roll: np.ndarray) -> tuple[int, int]:
    """A roll's changes of a four-note chord, and the parallel fifths and octaves among them, as defined in
    `voice_statistics`: (chord_changes, parallels)."""
    before, after = roll[:-1], roll[1:]
    is_change = (before.sum(axis=1) == CHORD_NOTES) & (after.sum(axis=1) == CHORD_NOTES) & (before != after).any(axis=1)
    return int(is_change.sum()), int(parallels_between(before, after).sum())


def parallels_between(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The parallel fifths and octaves of each step `after` (n, 88) following the step `before` it (n, 88), as
    `voice_statistics` counts them, shape (n,) int: 0 where the two are not both four-note chords."""
    before, after = np.asarray(before, dtype=bool), np.asarray(after, dtype=bool)
    is_change = (before.sum(axis=1) == CHORD_NOTES) & (after.sum(axis=1) == CHORD_NOTES)
    counts = np.zeros(len(before), dtype=np.int64)
    if not is_change.any():
        return counts
    voices_before = np.nonzero(before[is_change])[1].reshape(-1, CHORD_NOTES)  # keys low to high, row by row
    voices_after = np.nonzero(after[is_change])[1].reshape(-1, CHORD_NOTES)
    low, high = np.triu_indices(CHORD_NOTES, 1)  # the 6 pairs of voices, lower voice first
    moves = voices_after - voices_before
    same_way = (moves[:, low] != 0) & (np.sign(moves[:, low]) == np.sign(moves[:, high]))
    apart_before = (voices_before[:, high] - voices_before[:, low]) % 12  # 0: octaves (a chord's keys are distinct)
    apart_after = (voices_after[:, high] - voices_after[:, low]) % 12
    perfect = (apart_before == apart_after) & np.isin(apart_before, PERFECT_CLASSES)
    counts[is_change] = (same_way & perfect).sum(axis=1)
    return counts


def top_moves(roll: np.ndarray) -> np.ndarray:
    """The top voice's moves in semitones, up positive, at each transition where both steps sound and the
    highest sounding key changes, shape (moves,)."""
    is_sounding = roll.any(axis=1)
    top = np.where(is_sounding, roll.shape[1] - 1 - np.argmax(roll[:, ::-1], axis=1), -1)  # (steps,)
    moves = np.diff(top)
    return moves[is_sounding[1:] & is_sounding[:-1] & (moves != 0)]


def held_chords(roll: np.ndarray, hold_steps: int) -> int:
    """How many runs of `hold_steps` or more consecutive steps sound one same set of HELD_CHORD_NOTES or more
    keys: each run counts once."""
    is_full = roll.sum(axis=1) >= HELD_CHORD_NOTES  # (steps,)
    goes_on = np.r_[False, is_full[1:] & (roll[1:] == roll[:-1]).all(axis=1)]  # step t holds step t-1's chord
    run_of_step = np.cumsum(is_full & ~goes_on)  # each run of one chord numbered from 1
    lengths = np.bincount(run_of_step[is_full])
    return int((lengths >= hold_steps).sum())
