"""The piece: the one value that carries music between every stage of musiclstm.

A `Piece` is what musiclstm knows of a piece of music on the beat grid: the keys sounding at each step
(`roll`, bool (steps, 88), column k is MIDI pitch 21 + k), the keys struck there (`onsets`, the same
shape, always among the keys sounding: a key struck while it sounds starts a new note), where its steps
fall in the music (`grid`: steps per beat, pickup, bars and their changes, marked phrase ends), its tempo
map, its name, and for a piece read from a file what the reading left out. Reading (MIDI, music21,
benchmark files), corpora, composing, judging and writing (MIDI, audio, pictures, scores) take and give it. A cut of a
piece (`steps`, `bars`) keeps its metre, tempo and phrase ends from where it starts. Nothing here imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import ClassVar

import numpy as np

from musiclstm.config import DEFAULT_TEMPO_BPM, N_KEYS, MusicLSTMError
from musiclstm.music.grid import COMMON_TIME, Grid


@dataclass(frozen=True)
class Reading:
    """What reading a file kept, changed and left out, by count; a note may count in more than one kind.

    `changes()` gives the counts by name (for JSON), `in_words()` the kinds that happened in one line.
    """

    n_notes: int = 0  # notes read on the keyboard (merged ones included)
    n_off_keyboard: int = 0  # pitched notes outside A0..C8, dropped
    n_drum_notes: int = 0  # notes on drum tracks, dropped
    n_merged: int = 0  # notes that started on the step of another note of the same key, merged into it
    n_pedal_held: int = 0  # notes released while the sustain pedal was down, held until it rose (or the key was struck)
    n_pedal_ignored: int = 0  # notes released under the sustain pedal, ended at their release (read with pedal=False)
    n_zero_length: int = 0  # notes of no length in the file, sounding one step
    n_overlapping: int = 0  # notes whose key was struck again before their release: ended there, their tail lost
    n_unended: int = 0  # notes struck and never released (no note-off), dropped
    n_off_grid: int = 0  # notes whose start or end fell between steps, moved to the nearest (half a step: later)

    WORDS: ClassVar[dict[str, tuple[str, str]]] = {  # each kind's clause: (one note, several notes)
        # the composing warnings' tests pin this clause as it read before, "1 notes" included
        "off_keyboard": (
            "notes off the 88 keys (below A0 or above C8) are left out",
            "notes off the 88 keys (below A0 or above C8) are left out",
        ),
        "drum_notes": ("drum note is left out", "drum notes are left out"),
        "unended": ("note never released (no note-off) is left out", "notes never released (no note-off) are left out"),
        "merged": (
            "note starts on the step of another of its key: merged",
            "notes start on the step of another of their key: merged",
        ),
        "overlapping": (
            "note ends where its key is struck again before its release",
            "notes end where their key is struck again before their release",
        ),
        "pedal_held": (
            "note is held by the sustain pedal until it is lifted",
            "notes are held by the sustain pedal until it is lifted",
        ),
        "pedal_ignored": (
            "note released under the sustain pedal ends at its release (pedal not applied)",
            "notes released under the sustain pedal end at their release (pedal not applied)",
        ),
        "zero_length": ("note of no length sounds one step", "notes of no length sound one step"),
        "off_grid": (
            "note off the grid is moved to the nearest step",
            "notes off the grid are moved to the nearest step",
        ),
    }

    def __add__(self, other: Reading) -> Reading:
        """The counts of two readings added: what reading a set of files did."""
        return Reading(*(getattr(self, field.name) + getattr(other, field.name) for field in fields(self)))

    def changes(self) -> dict[str, int]:
        """Each kind of change or loss by name (`off_keyboard`, `pedal_held`, ...) and count, zeros included."""
        return {kind: getattr(self, f"n_{kind}") for kind in self.WORDS}

    def in_words(self) -> str:
        """The kinds of change or loss that happened, in one line ("3 notes are held by the sustain pedal until
        it rises; 1 drum note is left out"); empty where reading changed nothing."""
        clauses = []
        for kind, count in self.changes().items():
            one, several = self.WORDS[kind]
            if count:
                clauses.append(f"{count:,} {one if count == 1 else several}")
        return "; ".join(clauses)


@dataclass(frozen=True, eq=False)
class Piece:
    """A piece on the beat grid: its keys sounding and struck, its metre, tempo map and name.

    `tempos` is the tempo map: (step, beats per minute) pairs, steps increasing, the first at step 0.
    `reading` says what was left out where the piece was read from a file (None: made, not read).

    Raises:
        MusicLSTMError: a roll or onsets of the wrong shape, or a tempo map that does not start at step 0.
    """

    roll: np.ndarray  # (steps, 88) bool: the keys sounding at each step
    onsets: np.ndarray | None = None  # (steps, 88) bool: the keys struck; None: those the roll tells (`onsets_of`)
    grid: Grid = COMMON_TIME
    tempos: tuple[tuple[int, float], ...] = ((0, DEFAULT_TEMPO_BPM),)
    name: str = ""
    reading: Reading | None = None

    def __post_init__(self) -> None:
        roll = np.asarray(self.roll, dtype=bool)
        if roll.ndim != 2 or roll.shape[1] != N_KEYS:
            raise MusicLSTMError(f"a roll must have shape (steps, {N_KEYS}), got {roll.shape}")
        onsets = onsets_of(roll) if self.onsets is None else np.asarray(self.onsets, dtype=bool)
        if onsets.shape != roll.shape:
            raise MusicLSTMError(f"onsets must have the roll's shape {roll.shape}, got {onsets.shape}")
        if not self.tempos or self.tempos[0][0] != 0:
            raise MusicLSTMError(f"a tempo map starts at step 0, got {self.tempos!r}")
        object.__setattr__(self, "roll", roll)
        object.__setattr__(self, "onsets", onsets)
        object.__setattr__(self, "tempos", tuple((int(step), float(bpm)) for step, bpm in self.tempos))

    def __eq__(self, other: object) -> bool:
        """Equal pieces have the same keys sounding and struck, grid, tempo map and name (not the same reading)."""
        if not isinstance(other, Piece):
            return NotImplemented
        return (
            np.array_equal(self.roll, other.roll)
            and np.array_equal(self.onsets, other.onsets)
            and (self.grid, self.tempos, self.name) == (other.grid, other.tempos, other.name)
        )

    __hash__ = None  # holds arrays: a piece is not a dict key

    @classmethod
    def from_events(cls, events: np.ndarray, grid: Grid = COMMON_TIME, **fields) -> Piece:
        """A piece from events (steps, 176): the keys sounding, then the keys struck."""
        events = np.asarray(events, dtype=bool)
        return cls(events[:, :N_KEYS], events[:, N_KEYS:] & events[:, :N_KEYS], grid, **fields)

    @property
    def n_steps(self) -> int:
        return len(self.roll)

    @property
    def steps_per_beat(self) -> int:
        """Steps per beat (a quarter note), read from the grid: the piece's only time base."""
        return self.grid.steps_per_beat

    @property
    def tempo_bpm(self) -> float:
        """The tempo at the piece's first step."""
        return self.tempos[0][1]

    @property
    def events(self) -> np.ndarray:
        """The piece as events (steps, 176) bool: the keys sounding, then the keys struck."""
        return np.concatenate([self.roll, self.onsets], axis=-1)

    def tempo_at(self, step: int) -> float:
        """The tempo in beats per minute in force at `step`."""
        steps = [start for start, _ in self.tempos]
        return self.tempos[max(int(np.searchsorted(steps, step, side="right")) - 1, 0)][1]

    def seconds(self) -> float:
        """How long the piece lasts, following its tempo map."""
        bounds = [step for step, _ in self.tempos[1:]] + [self.n_steps]
        total, start = 0.0, 0
        for (_, bpm), end in zip(self.tempos, bounds, strict=True):
            total += max(end - start, 0) * 60.0 / (bpm * self.steps_per_beat)
            start = max(start, end)
        return total

    def steps(self, start: int, end: int | None = None) -> Piece:
        """Steps `start` to `end` (left out) as a piece of their own, its metre, tempo and phrase ends seen from
        `start` (`Grid.shifted`); phrase ends from `end` on are left out, one under way there cut (`Grid.cropped`)."""
        end = self.n_steps if end is None else end
        if not 0 <= start <= end <= self.n_steps:
            raise MusicLSTMError(f"steps {start}-{end} are not within the piece's {self.n_steps:,} steps")
        later = tuple((step - start, bpm) for step, bpm in self.tempos if start < step < end)
        return replace(
            self,
            roll=self.roll[start:end],
            onsets=self.onsets[start:end],
            grid=(self.grid.shifted(start) if start else self.grid).cropped(end - start),
            tempos=((0, self.tempo_at(start)), *later),
        )

    def bar_lines(self) -> np.ndarray:
        """The steps where the piece's bars begin, a pickup counting as bar 1: the first is 0, the last the end."""
        lines = self.grid.bar_starts(self.n_steps)
        return np.unique(np.concatenate([[0], lines[lines <= self.n_steps], [self.n_steps]]))

    def bar_span(self, first: int, last: int) -> tuple[int, int]:
        """The steps [start, end) of bars `first` to `last` (from 1, a pickup is bar 1, both included).

        Raises:
            MusicLSTMError: the bars are not within the piece.
        """
        lines = self.bar_lines()
        n_bars = len(lines) - 1
        if not 1 <= first <= last <= n_bars:
            raise MusicLSTMError(f"bars {first}-{last} are not within the piece's {n_bars:,} bars (1-{n_bars:,})")
        return int(lines[first - 1]), int(lines[last])

    def bars(self, first: int, last: int) -> Piece:
        """Bars `first` to `last` (from 1, both included) as a piece of their own."""
        return self.steps(*self.bar_span(first, last))

    def transposed(self, semitones: int) -> Piece:
        """The piece moved by `semitones` (down when negative); notes pushed off the keyboard drop."""
        return replace(self, roll=shift_keys(self.roll, semitones), onsets=shift_keys(self.onsets, semitones))

    def top_line(self) -> np.ndarray:
        """The key index of the highest sounding key at each step, -1 where the step is silent, shape (steps,)."""
        return top_line(self.roll)

    def notes(self) -> list[tuple[int, int, int]]:
        """The piece's notes as (pitch, start_step, end_step), sorted; a key struck again starts a new note."""
        return roll_to_notes(self.roll, self.onsets)


def onsets_of(roll: np.ndarray) -> np.ndarray:
    """The struck keys a roll alone tells: a key sounding at a step where it was silent (or at step 0).

    Takes (..., steps, 88) and returns bool of that shape; a key struck again without a gap is not in
    it (the roll cannot say).
    """
    roll = np.asarray(roll, dtype=bool)
    onsets = roll.copy()
    onsets[..., 1:, :] &= ~roll[..., :-1, :]
    return onsets


def top_line(roll: np.ndarray) -> np.ndarray:
    """The key index of the highest sounding key at each step, -1 where the step is silent, shape (steps,)."""
    roll = np.asarray(roll, dtype=bool)
    return np.where(roll.any(axis=1), roll.shape[1] - 1 - np.argmax(roll[:, ::-1], axis=1), -1)


def bottom_line(roll: np.ndarray) -> np.ndarray:
    """The key index of the lowest sounding key at each step, -1 where the step is silent, shape (steps,)."""
    roll = np.asarray(roll, dtype=bool)
    return np.where(roll.any(axis=1), np.argmax(roll, axis=1), -1)


def roll_to_notes(roll: np.ndarray, onsets: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """List the notes of a roll as (pitch, start_step, end_step), sorted.

    Without `onsets`, a held run of steps is one note. With them ((steps, 88) bool), a key sounding
    at step t and struck at t starts a new note even if it sounded at t - 1; the note before ends at t.
    Onsets of silent keys mean nothing.
    """
    from musiclstm.config import LOWEST_PITCH

    roll = np.asarray(roll, dtype=bool)
    before = np.zeros_like(roll)
    before[1:] = roll[:-1]
    starts = roll & ~before
    if onsets is not None:
        onsets = np.asarray(onsets, dtype=bool)
        if onsets.shape != roll.shape:
            raise MusicLSTMError(f"onsets must have the roll's shape {roll.shape}, got {onsets.shape}")
        starts |= roll & onsets
    after = np.zeros_like(roll)  # whether the same note still sounds at the next step
    after[:-1] = roll[1:] & ~starts[1:]
    ends = roll & ~after  # the last step of each note
    starts_step, starts_key = np.nonzero(starts)
    ends_step, ends_key = np.nonzero(ends)
    starts_sorted = sorted(zip(starts_key.tolist(), starts_step.tolist(), strict=True))
    ends_sorted = sorted(zip(ends_key.tolist(), ends_step.tolist(), strict=True))
    notes = (
        (key + LOWEST_PITCH, start, end + 1) for (key, start), (_, end) in zip(starts_sorted, ends_sorted, strict=True)
    )
    return sorted(notes)


def shift_keys(block: np.ndarray, semitones: int) -> np.ndarray:
    """Move every note of a (..., 88 x planes) block up by `semitones` (down when negative), each plane of
    88 keys (sounding, struck) alike; notes pushed off drop."""
    planes = block.reshape(*block.shape[:-1], -1, N_KEYS)
    shifted = np.zeros_like(planes)
    if semitones >= 0:
        shifted[..., semitones:] = planes[..., : N_KEYS - semitones]
    else:
        shifted[..., :semitones] = planes[..., -semitones:]
    return shifted.reshape(block.shape)


def allowed_shifts(block: np.ndarray, low: int, high: int) -> range:
    """The semitone shifts in low..high that keep every note of a (steps, 88 or 176) block on the keyboard."""
    sounding = np.flatnonzero(block[:, :N_KEYS].any(axis=0))
    if sounding.size == 0:
        return range(low, high + 1)
    return range(max(low, -int(sounding[0])), min(high, N_KEYS - 1 - int(sounding[-1])) + 1)
