"""Turn MIDI files and note lists into piano rolls and back.

A roll is a bool array of shape (steps, 88), time first; column k is MIDI pitch 21 + k (A0..C8).
Steps lie on the beat grid: `steps_per_beat` rows per quarter note, counted in the file's own ticks
(`round(tick * steps_per_beat / ticks_per_quarter)`), so tempo changes move nothing on the grid.
Drum tracks are left out, every pitched instrument is merged into one roll, notes off the keyboard
are dropped and counted, and velocity is not kept. A roll cannot tell a held note from the same note
repeated without a gap: both read back as one held note. A `Grid` says where a roll's steps fall in
the music (steps per beat and the metre); steps per bar is computed there and nowhere else. Nothing
here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from musiclstm.config import (
    BEATS_PER_BAR,
    DEFAULT_STEPS_PER_BEAT,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    MAX_STEPS_PER_BEAT,
    N_KEYS,
    MusicLSTMError,
    check_whole_number,
)

MIDI_HEADER = b"MThd"
WRITE_RESOLUTION = 960  # ticks per quarter note in files we write: divisible by 1-6, 8, 10, 12, 15, 16
MAX_FILE_TICKS = 10_000_000  # pretty_midi refuses a file whose last event lies past this tick as likely corrupt
END_MARKER = "musiclstm:end"  # a text event that keeps a roll's trailing silence in the file
MAX_MIDI_BYTES = 4_000_000  # a long orchestral MIDI file is under 1 MB; this bounds the parsing work
MAX_ROLL_STEPS = 500_000  # 35 hours at 4 steps per beat and 60 bpm; 44 MB of roll


@dataclass(frozen=True)
class Grid:
    """Where a roll's steps fall in the music: its time base and its metre.

    `steps_per_beat` rows per beat (a quarter note), `beats_per_bar` beats per bar, and the first bar line at
    step `bar_offset` (0: the roll starts on a bar line; a pickup would start later). Every piece is in 4/4
    from its first step today.

    Raises:
        MusicLSTMError: a field out of range, named.
    """

    steps_per_beat: int = DEFAULT_STEPS_PER_BEAT
    beats_per_bar: int = BEATS_PER_BAR
    bar_offset: int = 0  # steps before the first bar line

    def __post_init__(self) -> None:
        check_whole_number("steps_per_beat", self.steps_per_beat, 1, MAX_STEPS_PER_BEAT)
        check_whole_number("beats_per_bar", self.beats_per_bar, 1, 64)
        check_whole_number("bar_offset", self.bar_offset, 0, self.steps_per_bar - 1)

    @property
    def steps_per_bar(self) -> int:
        """Steps in one bar."""
        return self.beats_per_bar * self.steps_per_beat

    def is_bar_start(self, step: int) -> bool:
        """Whether a bar line falls before step `step` (from 0)."""
        return (step - self.bar_offset) % self.steps_per_bar == 0

    def is_beat_start(self, step: int) -> bool:
        """Whether a beat starts at step `step` (from 0)."""
        return (step - self.bar_offset) % self.steps_per_beat == 0

    def bar_starts(self, n_steps: int) -> range:
        """The steps from 0 to `n_steps` (both included) where a bar line falls."""
        return range(self.bar_offset, n_steps + 1, self.steps_per_bar)

    def n_bars(self, n_steps: int) -> int:
        """The bars `n_steps` steps take, a bar begun counted whole, a pickup as a bar; at least 1."""
        pickup = 1 if self.bar_offset else 0
        return max(1, pickup - (-max(0, n_steps - self.bar_offset) // self.steps_per_bar))


def as_grid(grid: Grid | int) -> Grid:
    """A Grid as given, or whole-number steps per beat read as that grid in 4/4 from the first step."""
    return grid if isinstance(grid, Grid) else Grid(grid)


@dataclass(frozen=True)
class ReadRoll:
    """A roll read from a file, with what was left out of it."""

    roll: np.ndarray  # (steps, 88) bool
    n_notes: int  # notes kept on the keyboard
    n_off_keyboard: int  # pitched notes outside A0..C8, dropped
    n_drum_notes: int  # notes on drum tracks, dropped


def empty_roll(n_steps: int) -> np.ndarray:
    """Return a silent roll of `n_steps` steps."""
    return np.zeros((n_steps, N_KEYS), dtype=bool)


def check_midi_header(path: Path) -> None:
    """Raise a named error unless `path` is a non-empty file, not too big, that starts like a Standard MIDI File."""
    try:
        with open(path, "rb") as file:
            head = file.read(len(MIDI_HEADER))
            size = file.seek(0, 2)
    except OSError as err:
        raise MusicLSTMError(f"{path}: cannot be read ({err.strerror})") from err
    if not head:
        raise MusicLSTMError(f"{path}: empty file (0 bytes)")
    if size > MAX_MIDI_BYTES:
        raise MusicLSTMError(f"{path}: {size:,} bytes, over the {MAX_MIDI_BYTES:,}-byte limit for a MIDI file")
    if head != MIDI_HEADER:
        raise MusicLSTMError(f"{path}: not a MIDI file (no MThd header)")


def load_midi(path: str | Path) -> pretty_midi.PrettyMIDI:
    """Parse a MIDI file, naming the file and the reason when it cannot be parsed."""
    path = Path(path)
    check_midi_header(path)
    try:
        return pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # mido and pretty_midi raise many types for broken files
        raise MusicLSTMError(f"{path}: unreadable MIDI ({type(err).__name__}: {err})") from err


def midi_to_roll(path: str | Path, steps_per_beat: int) -> ReadRoll:
    """Read a MIDI file into a roll on the beat grid.

    The roll runs from tick 0 to the file's last event, so silence at either end is kept.
    A note shorter than one step still sounds for one step.

    Raises:
        MusicLSTMError: the file is missing, empty, not MIDI, too big or too long, or cannot be parsed.
    """
    midi = load_midi(path)

    def to_step(seconds: float) -> int:
        return round(midi.time_to_tick(seconds) * steps_per_beat / midi.resolution)

    spans: list[tuple[int, int, int]] = []
    n_off_keyboard = n_drum_notes = 0
    for instrument in midi.instruments:
        if instrument.is_drum:
            n_drum_notes += len(instrument.notes)
            continue
        for note in instrument.notes:
            if not LOWEST_PITCH <= note.pitch <= HIGHEST_PITCH:
                n_off_keyboard += 1
                continue
            start = to_step(note.start)
            spans.append((note.pitch, start, max(to_step(note.end), start + 1)))
    n_steps = max([to_step(midi.get_end_time())] + [end for _, _, end in spans])
    if n_steps > MAX_ROLL_STEPS:
        raise MusicLSTMError(
            f"{path}: {n_steps:,} steps long at {steps_per_beat} per beat, over the limit of {MAX_ROLL_STEPS:,}"
        )
    roll = empty_roll(n_steps)
    for pitch, start, end in spans:
        roll[start:end, pitch - LOWEST_PITCH] = True
    return ReadRoll(roll, len(spans), n_off_keyboard, n_drum_notes)


def steps_to_roll(steps: Sequence[Iterable[float]]) -> tuple[np.ndarray, int]:
    """Build a roll from a list of steps, each a collection of MIDI pitches (the benchmark format).

    Returns the roll and the number of pitches that fell off the keyboard and were dropped.
    """
    roll = empty_roll(len(steps))
    n_off_keyboard = 0
    for step, pitches in enumerate(steps):
        for pitch in pitches:
            pitch = int(pitch)
            if LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
                roll[step, pitch - LOWEST_PITCH] = True
            else:
                n_off_keyboard += 1
    return roll, n_off_keyboard


def roll_to_notes(roll: np.ndarray) -> list[tuple[int, int, int]]:
    """List the notes of a roll as (pitch, start_step, end_step), a held run of steps being one note."""
    roll = np.asarray(roll, dtype=bool)
    padded = np.zeros((roll.shape[0] + 2, roll.shape[1]), dtype=np.int8)
    padded[1:-1] = roll
    changes = np.diff(padded, axis=0)  # +1 where a note starts, -1 one step after it ends
    starts_step, starts_key = np.nonzero(changes == 1)
    ends_step, ends_key = np.nonzero(changes == -1)
    starts = sorted(zip(starts_key, starts_step, strict=True))
    ends = sorted(zip(ends_key, ends_step, strict=True))
    notes = (
        (int(key) + LOWEST_PITCH, int(start), int(end)) for (key, start), (_, end) in zip(starts, ends, strict=True)
    )
    return sorted(notes)


def top_line(roll: np.ndarray) -> np.ndarray:
    """The key index of the highest sounding key at each step, -1 where the step is silent, shape (steps,)."""
    roll = np.asarray(roll, dtype=bool)
    return np.where(roll.any(axis=1), roll.shape[1] - 1 - np.argmax(roll[:, ::-1], axis=1), -1)


def bottom_line(roll: np.ndarray) -> np.ndarray:
    """The key index of the lowest sounding key at each step, -1 where the step is silent, shape (steps,)."""
    roll = np.asarray(roll, dtype=bool)
    return np.where(roll.any(axis=1), np.argmax(roll, axis=1), -1)


def write_resolution(n_steps: int, steps_per_beat: int) -> int:
    """Ticks per quarter note for writing a roll of `n_steps`: WRITE_RESOLUTION, or for a roll so long
    that its end would lie past MAX_FILE_TICKS, the most whole ticks per step that keep it within.

    At 960 ticks per beat a piece of 10,417 steps at 1 step per beat (41,667 at 4) would already end
    past the limit, and pretty_midi, and so musiclstm, would refuse the file it had written.
    """
    steps = n_steps + 1  # a step to spare: pretty_midi writes the end of its track a tick or two late
    if steps * WRITE_RESOLUTION <= MAX_FILE_TICKS * steps_per_beat:
        return WRITE_RESOLUTION
    return steps_per_beat * max(1, MAX_FILE_TICKS // steps)


def roll_to_midi(
    roll: np.ndarray,
    steps_per_beat: int,
    tempo_bpm: float = 120.0,
    program: int = 0,
    velocity: int | Callable[[int], int] = 90,
) -> pretty_midi.PrettyMIDI:
    """Write a roll as one instrument, merging each held run of steps into one note.

    `velocity` is a number, or a function of a note's start step. A text event marks the roll's last
    step, so trailing silence survives a round trip. The resolution is `write_resolution`'s, so a
    roll of any length up to MAX_ROLL_STEPS reads back.
    """
    if roll.ndim != 2 or roll.shape[1] != N_KEYS:
        raise MusicLSTMError(f"a roll must have shape (steps, {N_KEYS}), got {roll.shape}")
    seconds_per_step = 60.0 / (tempo_bpm * steps_per_beat)
    resolution = write_resolution(roll.shape[0], steps_per_beat)
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo_bpm)
    instrument = pretty_midi.Instrument(program=program)
    velocity_at = velocity if callable(velocity) else (lambda step: velocity)
    for pitch, start, end in roll_to_notes(roll):
        instrument.notes.append(
            pretty_midi.Note(
                velocity=velocity_at(start), pitch=pitch, start=start * seconds_per_step, end=end * seconds_per_step
            )
        )
    midi.instruments.append(instrument)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    midi.text_events.append(pretty_midi.Text(END_MARKER, roll.shape[0] * seconds_per_step))
    return midi
