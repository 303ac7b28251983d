"""Turn MIDI files and note lists into piano rolls and back.

A roll is a bool array of shape (steps, 88), time first; column k is MIDI pitch 21 + k (A0..C8).
Steps lie on the beat grid: `steps_per_beat` rows per quarter note, counted in the file's own ticks
(`round(tick * steps_per_beat / ticks_per_quarter)`), so tempo changes move nothing on the grid.
Drum tracks are left out, every pitched instrument is merged into one roll, notes off the keyboard
are dropped and counted, and velocity is not kept. A roll alone cannot tell a held note from the same
note struck again without a gap, so beside it go its onsets, a bool array of the same shape: the keys
struck at each step, always among the keys sounding then. Two notes of one key starting on one step
are one note on the grid (counted as merged). A `Grid` says where a roll's steps fall in the music
(steps per beat, pickup, bar lengths and their changes, read from and written as MIDI time
signatures); steps per bar is computed there and nowhere else. Nothing here imports torch.
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


MAX_BEATS_PER_BAR = 64  # the longest bar a Grid holds, in quarter notes


@dataclass(frozen=True)
class Grid:
    """Where a roll's steps fall in the music: its time base and its metre.

    `steps_per_beat` rows per beat (a quarter note, whatever the time signature), and bars of
    `beats_per_bar` beats with the first bar line at step `bar_offset` (0: the roll starts on a bar
    line; a pickup starts later). The metre may change: `changes` are later sections, each
    (step of a bar line, steps per bar from there on), steps increasing, each on a bar line of the
    section before, and of another length. A change may sit at `bar_offset` itself, to give the first
    section a bar that is not a whole number of beats (7/8 at 4 steps per beat: 14 steps); `beats_per_bar`
    is then BEATS_PER_BAR, as no whole number of beats tells that bar. Before the first bar line the
    first section runs backwards (a pickup is the end of a bar); after the last change the last
    section runs on. A bar of n/d time is n * 4 / d quarter notes: `round(n * 4 / d * steps_per_beat)`
    steps (`bar_steps`).

    Raises:
        MusicLSTMError: a field out of range or a change off the bar lines, named.
    """

    steps_per_beat: int = DEFAULT_STEPS_PER_BEAT
    beats_per_bar: int = BEATS_PER_BAR
    bar_offset: int = 0  # steps before the first bar line
    changes: tuple[tuple[int, int], ...] = ()  # (bar line step, steps per bar from it on), steps increasing

    def __post_init__(self) -> None:
        check_whole_number("steps_per_beat", self.steps_per_beat, 1, MAX_STEPS_PER_BEAT)
        check_whole_number("beats_per_bar", self.beats_per_bar, 1, MAX_BEATS_PER_BAR)
        object.__setattr__(self, "changes", checked_changes(self.changes, self.steps_per_beat))
        if self.changes and self.changes[0][0] == self.bar_offset:
            steps_per_bar = self.changes[0][1]
            if steps_per_bar % self.steps_per_beat == 0:
                raise MusicLSTMError(
                    f"changes[0] ({self.bar_offset}, {steps_per_bar}): a first bar of whole beats is "
                    f"beats_per_bar={steps_per_bar // self.steps_per_beat}, not a change"
                )
            object.__setattr__(self, "beats_per_bar", BEATS_PER_BAR)  # no whole number of beats tells this bar
        check_whole_number("bar_offset", self.bar_offset, 0, self.steps_per_bar - 1)
        start, length = self.bar_offset, self.beats_per_bar * self.steps_per_beat
        for index, (step, steps_per_bar) in enumerate(self.changes):
            if index == 0 and step == start:
                start, length = step, steps_per_bar
                continue
            name = f"changes[{index}] ({step}, {steps_per_bar})"
            if step <= start:
                raise MusicLSTMError(f"{name}: its step must come after {start}, where the section before starts")
            if (step - start) % length:
                raise MusicLSTMError(
                    f"{name}: step {step} is not on a bar line of the section before "
                    f"(bars of {length} steps from {start})"
                )
            if steps_per_bar == length:
                raise MusicLSTMError(f"{name}: keeps the bar of {length} steps of the section before; leave it out")
            start, length = step, steps_per_bar

    @property
    def steps_per_bar(self) -> int:
        """Steps in one bar of the first section (the bar at `bar_offset`)."""
        if self.changes and self.changes[0][0] == self.bar_offset:
            return self.changes[0][1]
        return self.beats_per_bar * self.steps_per_beat

    def sections(self) -> list[tuple[int, int]]:
        """The metre's sections as (step of their first bar line, steps per bar), the first at `bar_offset`."""
        if self.changes and self.changes[0][0] == self.bar_offset:
            return list(self.changes)
        return [(self.bar_offset, self.steps_per_bar), *self.changes]

    def place_in_bar(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Say where each step falls in its bar, for any whole-number positions (negative: before the piece).

        Returns:
            (steps since the last bar line, steps in that bar), both int64 arrays of the shape of `positions`.
        """
        positions = np.asarray(positions, dtype=np.int64)
        starts, lengths = (np.array(column, dtype=np.int64) for column in zip(*self.sections(), strict=True))
        section = np.maximum(np.searchsorted(starts, positions, side="right") - 1, 0)
        length = lengths[section]
        return (positions - starts[section]) % length, length

    def is_bar_start(self, step: int) -> bool:
        """Whether a bar line falls before step `step` (from 0)."""
        return bool(self.place_in_bar(np.array(step))[0] == 0)

    def is_beat_start(self, step: int) -> bool:
        """Whether a beat starts at step `step` (from 0); beats are counted from each bar line."""
        return bool(self.place_in_bar(np.array(step))[0] % self.steps_per_beat == 0)

    def bar_starts(self, n_steps: int) -> np.ndarray:
        """The steps from 0 to `n_steps` (both included) where a bar line falls, increasing."""
        sections = self.sections()
        ends = [min(step, n_steps + 1) for step, _ in sections[1:]] + [n_steps + 1]
        steps = [np.arange(start, end, length) for (start, length), end in zip(sections, ends, strict=True)]
        return np.concatenate(steps).astype(np.int64)

    def n_bars(self, n_steps: int) -> int:
        """The bars `n_steps` steps take, a bar begun counted whole, a pickup as a bar; at least 1."""
        pickup = 1 if self.bar_offset else 0
        return max(1, pickup + int(np.count_nonzero(self.bar_starts(n_steps) < n_steps)))

    def shifted(self, start: int) -> Grid:
        """The same metre seen from step `start` on: the grid of a passage that begins at `start`.

        The bar in force at `start` holds from there (a passage starting inside it opens with a pickup);
        the later changes follow, moved by `start`. Passages start on bar lines in musiclstm; one that
        starts inside the last bar before a change reads its pickup in the new section's bars.
        """
        place, length = (int(value) for value in self.place_in_bar(np.array(start)))
        first_line = (length - place) % length
        later = [(step - start, steps) for step, steps in self.sections() if step > start]
        if later and later[0][0] == first_line:  # the passage's first bar line begins a new section
            length = later.pop(0)[1]
            first_line %= length
        if length % self.steps_per_beat:
            return Grid(self.steps_per_beat, BEATS_PER_BAR, first_line, ((first_line, length), *later))
        return Grid(self.steps_per_beat, length // self.steps_per_beat, first_line, tuple(later))

    def to_dict(self) -> dict:
        """The grid as JSON-able values; `Grid.from_dict` reads it back."""
        return {
            "steps_per_beat": self.steps_per_beat,
            "beats_per_bar": self.beats_per_bar,
            "bar_offset": self.bar_offset,
            "changes": [list(change) for change in self.changes],
        }

    @classmethod
    def from_dict(cls, values: dict) -> Grid:
        """Read a grid written by `to_dict`; a dict without `changes` (or other fields) takes their defaults.

        Raises:
            MusicLSTMError: not a dict, an unknown field, or a field out of range.
        """
        if not isinstance(values, dict):
            raise MusicLSTMError(f"a grid must be a dict of its fields, got {type(values).__name__}")
        unknown = set(values) - {"steps_per_beat", "beats_per_bar", "bar_offset", "changes"}
        if unknown:
            raise MusicLSTMError(f"a grid has no field {', '.join(sorted(unknown))}")
        return cls(**values)  # changes as JSON lists are made tuples by the check

    @classmethod
    def from_bar_lines(cls, steps_per_beat: int, bar_lines: Iterable[tuple[int, int]]) -> Grid:
        """Build the grid of a piece from the steps where its file states a time signature or starts a bar.

        Each (step, steps per bar) starts a bar at `step` and bars of that length from there on (a
        second one at a step replaces the first); 4/4 from step 0 until the first. One that falls
        inside a bar cuts that bar short, making it a section of one bar; the first bar cut short,
        when shorter than the bars after it, is a pickup: the end of a bar of the next section
        (`bar_offset`). A short first bar with a time signature of its own stays a bar. Equal bars in
        a row are one section. Steps per bar are capped at MAX_BEATS_PER_BAR beats. A Grid written by
        `roll_to_midi` (`time_signatures`) reads back equal.
        """
        pairs = sorted(((int(step), int(length)) for step, length in bar_lines), key=lambda pair: pair[0])
        stated = dict(pairs)  # the sort is stable: the last stated at a step wins
        longest = MAX_BEATS_PER_BAR * steps_per_beat
        sections, is_first_bar_cut = [(0, BEATS_PER_BAR * steps_per_beat)], False
        for step, length in stated.items():
            start, current = sections.pop()
            last_bar = start + (step - start) // current * current
            if last_bar > start:
                sections.append((start, current))
            if last_bar < step:
                sections.append((last_bar, step - last_bar))
                is_first_bar_cut |= last_bar == 0
            sections.append((step, min(max(1, length), longest)))
        merged = [sections[0]]
        for step, length in sections[1:]:
            if length != merged[-1][1]:
                merged.append((step, length))
        bar_offset = 0
        if is_first_bar_cut and len(merged) > 1 and merged[1][0] == merged[0][1] < merged[1][1]:
            bar_offset = merged.pop(0)[1]
        (_, first), changes = merged[0], merged[1:]
        if first % steps_per_beat:
            return cls(steps_per_beat, BEATS_PER_BAR, bar_offset, tuple(merged))
        return cls(steps_per_beat, first // steps_per_beat, bar_offset, tuple(changes))

    def time_signatures(self, n_steps: int) -> list[tuple[int, int, int]]:
        """The time signatures that `from_bar_lines` reads back as this grid, up to step `n_steps`.

        Returns:
            (step, numerator, denominator) in step order: a pickup is stated at step 0 with the first
            section's signature and again at `bar_offset`, where it cuts its bar short.
        """
        sections = self.sections()
        stated = [(0, sections[0][1])] if self.bar_offset else []
        stated += [(step, length) for step, length in sections if step <= n_steps]
        return [(step, *signature_of(length, self.steps_per_beat)) for step, length in stated]


def checked_changes(changes: object, steps_per_beat: int) -> tuple[tuple[int, int], ...]:
    """A Grid's changes as a tuple of (step, steps per bar) pairs of whole numbers in range, or a named error."""
    if not isinstance(changes, (list, tuple)):
        raise MusicLSTMError(f"changes must be a tuple of (step, steps per bar) pairs, got {changes!r}")
    checked = []
    for index, change in enumerate(changes):
        if not isinstance(change, (list, tuple)) or len(change) != 2:
            raise MusicLSTMError(f"changes[{index}] must be a (step, steps per bar) pair, got {change!r}")
        step, steps_per_bar = (int(value) if isinstance(value, np.integer) else value for value in change)
        check_whole_number(f"changes[{index}] step", step, 0, MAX_ROLL_STEPS)
        check_whole_number(f"changes[{index}] steps per bar", steps_per_bar, 1, MAX_BEATS_PER_BAR * steps_per_beat)
        checked.append((step, steps_per_bar))
    return tuple(checked)


def bar_steps(numerator: int, denominator: int, steps_per_beat: int) -> int:
    """Steps in a bar of `numerator`/`denominator` time: n * 4 / d quarter notes, at least one step."""
    return max(1, round(numerator * 4 / denominator * steps_per_beat))


def signature_of(steps_per_bar: int, steps_per_beat: int) -> tuple[int, int]:
    """The time signature (numerator, denominator) of a bar of `steps_per_bar` steps: in quarter notes
    when whole beats, else in the longest note value that counts it exactly, else the nearest that
    reads back to the same steps.

    Raises:
        MusicLSTMError: no signature up to 255/256 gives that many steps.
    """
    denominators = [4 * 2**power for power in range(7)]
    for denominator in denominators:
        numerator, remainder = divmod(steps_per_bar * denominator, 4 * steps_per_beat)
        if not remainder and numerator <= 255:
            return numerator, denominator
    for denominator in denominators:
        numerator = round(steps_per_bar * denominator / (4 * steps_per_beat))
        if 1 <= numerator <= 255 and bar_steps(numerator, denominator, steps_per_beat) == steps_per_bar:
            return numerator, denominator
    raise MusicLSTMError(f"a bar of {steps_per_bar} steps at {steps_per_beat} per beat has no time signature to write")


COMMON_TIME = Grid()  # 4/4 from the first step at the default steps per beat: where nothing says otherwise


def as_grid(grid: Grid | int) -> Grid:
    """A Grid as given, or whole-number steps per beat read as that grid in 4/4 from the first step."""
    return grid if isinstance(grid, Grid) else Grid(grid)


@dataclass(frozen=True)
class ReadRoll:
    """A roll read from a file, with its struck keys, its metre, and what was left out of it.

    `n_merged` counts the notes the grid cannot hold apart: a note that starts on the same step
    (after rounding to the grid) as another note of the same key is merged into it, the longer end
    kept. A note that starts while another of its key still sounds is kept: its onset ends the
    earlier note there. So `roll_to_notes(roll, onsets)` gives back `n_notes - n_merged` notes.
    """

    roll: np.ndarray  # (steps, 88) bool: the keys sounding at each step
    n_notes: int  # notes read on the keyboard (merged ones included)
    n_off_keyboard: int  # pitched notes outside A0..C8, dropped
    n_drum_notes: int  # notes on drum tracks, dropped
    onsets: np.ndarray | None = None  # (steps, 88) bool: the keys struck at each step; None: onsets_of(roll)
    grid: Grid | None = None  # the source's metre; None only where a caller did not know it
    n_merged: int = 0  # notes that started on the step of another note of the same key

    def __post_init__(self) -> None:
        if self.onsets is None:
            object.__setattr__(self, "onsets", onsets_of(self.roll))


def empty_roll(n_steps: int) -> np.ndarray:
    """Return a silent roll of `n_steps` steps."""
    return np.zeros((n_steps, N_KEYS), dtype=bool)


def onsets_of(roll: np.ndarray) -> np.ndarray:
    """The struck keys a roll alone tells: a key sounding at a step where it was silent (or at step 0).

    Takes (..., steps, 88) and returns bool of that shape; a key struck again without a gap is not in
    it (the roll cannot say).
    """
    roll = np.asarray(roll, dtype=bool)
    onsets = roll.copy()
    onsets[..., 1:, :] &= ~roll[..., :-1, :]
    return onsets


def spans_to_roll(spans: Sequence[tuple[int, int, int]], n_steps: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Lay notes (pitch, start_step, end_step) on a grid of `n_steps` steps.

    Returns:
        the roll and its onsets, each (n_steps, 88) bool, and the number of notes merged because
        another note of the same key starts on the same step.
    """
    roll, onsets = empty_roll(n_steps), empty_roll(n_steps)
    for pitch, start, end in spans:
        roll[start:end, pitch - LOWEST_PITCH] = True
        onsets[start, pitch - LOWEST_PITCH] = True
    n_struck = len({(pitch, start) for pitch, start, _ in spans})
    return roll, onsets, len(spans) - n_struck


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
    """Read a MIDI file into a roll on the beat grid, with its struck keys and its metre.

    The roll runs from tick 0 to the file's last event, so silence at either end is kept.
    A note shorter than one step still sounds for one step. Every note's start is an onset, even
    with no gap before it. The grid comes from the time-signature events (`Grid.from_bar_lines`):
    each starts a bar on its step, rounded to the grid; 4/4 from step 0 where the file says nothing.

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
    roll, onsets, n_merged = spans_to_roll(spans, n_steps)
    bar_lines = [
        (to_step(signature.time), bar_steps(signature.numerator, signature.denominator, steps_per_beat))
        for signature in midi.time_signature_changes
    ]
    grid = Grid.from_bar_lines(steps_per_beat, bar_lines)
    return ReadRoll(roll, len(spans), n_off_keyboard, n_drum_notes, onsets, grid, n_merged)


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


def roll_to_notes(roll: np.ndarray, onsets: np.ndarray | None = None) -> list[tuple[int, int, int]]:
    """List the notes of a roll as (pitch, start_step, end_step), sorted.

    Without `onsets`, a held run of steps is one note. With them ((steps, 88) bool), a key sounding
    at step t and struck at t starts a new note even if it sounded at t - 1; the note before ends at t.
    Onsets of silent keys mean nothing.
    """
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
    onsets: np.ndarray | None = None,
    grid: Grid | None = None,
) -> pretty_midi.PrettyMIDI:
    """Write a roll as one instrument, merging each held run of steps into one note.

    `onsets` ((steps, 88) bool) start a new note where a key is struck again without a gap (see
    `roll_to_notes`). `grid` writes its metre as time signatures (`Grid.time_signatures`: sections
    after the roll's end are left out); None is 4/4 from step 0. `velocity` is a number, or a
    function of a note's start step. A text event marks the roll's last step, so trailing silence
    survives a round trip. The resolution is `write_resolution`'s, so a roll of any length up to
    MAX_ROLL_STEPS reads back.

    Raises:
        MusicLSTMError: the roll or onsets are of the wrong shape, or the grid has other steps per beat.
    """
    if roll.ndim != 2 or roll.shape[1] != N_KEYS:
        raise MusicLSTMError(f"a roll must have shape (steps, {N_KEYS}), got {roll.shape}")
    grid = grid or Grid(steps_per_beat)
    if grid.steps_per_beat != steps_per_beat:
        raise MusicLSTMError(f"the grid has {grid.steps_per_beat} steps per beat, the roll {steps_per_beat}")
    seconds_per_step = 60.0 / (tempo_bpm * steps_per_beat)
    resolution = write_resolution(roll.shape[0], steps_per_beat)
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo_bpm)
    instrument = pretty_midi.Instrument(program=program)
    velocity_at = velocity if callable(velocity) else (lambda step: velocity)
    for pitch, start, end in roll_to_notes(roll, onsets):
        instrument.notes.append(
            pretty_midi.Note(
                velocity=velocity_at(start), pitch=pitch, start=start * seconds_per_step, end=end * seconds_per_step
            )
        )
    midi.instruments.append(instrument)
    for step, numerator, denominator in grid.time_signatures(roll.shape[0]):
        midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, step * seconds_per_step))
    midi.text_events.append(pretty_midi.Text(END_MARKER, roll.shape[0] * seconds_per_step))
    return midi
