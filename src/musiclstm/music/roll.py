"""Turn MIDI files and note lists into pieces on the beat grid, and pieces back into MIDI.

A piece's roll is a bool array of shape (steps, 88), time first; column k is MIDI pitch 21 + k (A0..C8).
Steps lie on the beat grid: `steps_per_beat` rows per quarter note, counted in the file's own ticks
(`round(tick * steps_per_beat / ticks_per_quarter)`), so tempo changes move nothing on the grid.
Drum tracks are left out, every pitched instrument is merged into one roll, notes off the keyboard
are dropped and counted, and velocity is not kept. Beside the roll go its onsets (the keys struck at
each step), its `Grid` (read from and written as MIDI time signatures) and its tempo map: together a
`Piece`. Two notes of one key starting on one step are one note on the grid (counted as merged).
Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pretty_midi

from musiclstm.config import (
    HIGHEST_PITCH,
    LOWEST_PITCH,
    MAX_STEPS_PER_BEAT,
    N_KEYS,
    TEMPO_RANGE_BPM,
    MusicLSTMError,
    check_tempo,
    check_whole_number,
)
from musiclstm.music.grid import MAX_ROLL_STEPS, Grid, bar_steps
from musiclstm.music.piece import Piece, Reading, roll_to_notes

MIDI_HEADER = b"MThd"
WRITE_RESOLUTION = 960  # ticks per quarter note in files we write: divisible by 1-6, 8, 10, 12, 15, 16
MAX_FILE_TICKS = 10_000_000  # pretty_midi refuses a file whose last event lies past this tick as likely corrupt
END_MARKER = "musiclstm:end"  # a text event that keeps a roll's trailing silence in the file
MAX_MIDI_BYTES = 4_000_000  # a long orchestral MIDI file is under 1 MB; this bounds the parsing work


def empty_roll(n_steps: int) -> np.ndarray:
    """Return a silent roll of `n_steps` steps."""
    return np.zeros((n_steps, N_KEYS), dtype=bool)


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


def midi_to_roll(path: str | Path, steps_per_beat: int) -> Piece:
    """Read a MIDI file into a piece on the beat grid: its roll, struck keys, metre, tempo map and what was left out.

    The roll runs from tick 0 to the file's last event, so silence at either end is kept.
    A note shorter than one step still sounds for one step. Every note's start is an onset, even
    with no gap before it. The grid comes from the time-signature events (`Grid.from_bar_lines`):
    each starts a bar on its step, rounded to the grid; 4/4 from step 0 where the file says nothing.
    The tempo map holds each tempo change on its step (120 bpm from step 0 where the file sets none).
    The piece is named by the file's path.

    Raises:
        MusicLSTMError: the file is missing, empty, not MIDI, too big or too long, cannot be parsed, or
            `steps_per_beat` is not a whole number from 1 to MAX_STEPS_PER_BEAT.
    """
    check_whole_number("steps_per_beat", steps_per_beat, 1, MAX_STEPS_PER_BEAT)
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
    reading = Reading(len(spans), n_off_keyboard, n_drum_notes, n_merged)
    return Piece(roll, onsets, grid, tempo_map(midi, steps_per_beat), str(path), reading)


def tempo_map(midi: pretty_midi.PrettyMIDI, steps_per_beat: int) -> tuple[tuple[int, float], ...]:
    """A file's tempo changes as (step, beats per minute), the first at step 0; a change is in force from the
    step whose start lies at or after its tick (a step's tempo is the one in force at its first tick)."""
    times, tempi = midi.get_tempo_changes()
    changes = {0: 120.0}
    for seconds, bpm in zip(times, tempi, strict=True):
        tick = midi.time_to_tick(seconds)
        changes[-(-tick * steps_per_beat // midi.resolution)] = float(bpm)  # the first step from that tick on
    return tuple(sorted(changes.items()))


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


def checked_roll(name: str, roll: object, n_steps: int | None = None) -> np.ndarray:
    """`roll` as a bool array (steps, 88): a bool array, or integers 0 and 1; anything else (floats such as 0.3
    or NaN, a 2, another width, `n_steps` other than given) refused by `name`."""
    array = np.asarray(roll)
    if array.ndim != 2 or array.shape[1] != N_KEYS or (n_steps is not None and len(array) != n_steps):
        steps = "steps" if n_steps is None else f"{n_steps:,}"
        raise MusicLSTMError(f"{name} must have shape ({steps}, {N_KEYS}), got {array.shape}")
    is_integer = np.issubdtype(array.dtype, np.integer)
    if array.dtype != bool and not (is_integer and ((array == 0) | (array == 1)).all()):
        raise MusicLSTMError(
            f"{name} must be bool, or integers 0 and 1 (a key sounds or not), got {array.dtype} values "
            "that are neither: round or threshold a roll of probabilities first"
        )
    return array.astype(bool, copy=False)


def checked_velocity(velocity: object) -> Callable[[int], int]:
    """A note's velocity as a function of its start step: a whole number 1-127 (0 is a note-off in MIDI), or a
    function whose every value is checked as it is given."""
    if callable(velocity):
        return lambda step: check_midi_number("velocity", velocity(step), 1)
    value = check_midi_number("velocity", velocity, 1)
    return lambda step: value


def check_midi_number(name: str, value: object, low: int = 0) -> int:
    """A MIDI data byte (a program or a velocity), from `low` to 127, as an int (numpy's integers taken)."""
    if isinstance(value, np.integer):
        value = int(value)
    return check_whole_number(name, value, low, 127)


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
        MusicLSTMError: before any work, by name: a roll or onsets that are not (steps, 88) bool or 0/1
            integers, steps per beat not from 1 to MAX_STEPS_PER_BEAT, a tempo outside TEMPO_RANGE_BPM,
            a program not from 0 to 127, a velocity not from 1 to 127 (a function's, as it is given),
            or a grid that is not a Grid of the roll's steps per beat.
    """
    roll = checked_roll("roll", roll)
    onsets = None if onsets is None else checked_roll("onsets", onsets, len(roll))
    check_whole_number("steps_per_beat", steps_per_beat, 1, MAX_STEPS_PER_BEAT)
    tempo_bpm = check_tempo(tempo_bpm)
    program = check_midi_number("program", program)
    velocity_at = checked_velocity(velocity)
    if grid is not None and not isinstance(grid, Grid):
        raise MusicLSTMError(f"grid must be a Grid or None (4/4), got {grid!r}")
    grid = grid or Grid(steps_per_beat)
    if grid.steps_per_beat != steps_per_beat:
        raise MusicLSTMError(f"the grid has {grid.steps_per_beat} steps per beat, the roll {steps_per_beat}")
    seconds_per_step = 60.0 / (tempo_bpm * steps_per_beat)
    resolution = write_resolution(roll.shape[0], steps_per_beat)
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=tempo_bpm)
    instrument = pretty_midi.Instrument(program=program)
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


def piece_to_midi(piece: Piece, program: int = 0, velocity: int | Callable[[int], int] = 90) -> pretty_midi.PrettyMIDI:
    """Write a piece as one instrument at its first tempo (brought within TEMPO_RANGE_BPM, as a file read may set any),
    with its struck notes and its metre (`roll_to_midi`)."""
    low, high = TEMPO_RANGE_BPM
    tempo_bpm = min(max(piece.tempo_bpm, low), high)
    return roll_to_midi(piece.roll, piece.steps_per_beat, tempo_bpm, program, velocity, piece.onsets, piece.grid)
