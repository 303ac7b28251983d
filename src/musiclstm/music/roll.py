"""Turn MIDI files and note lists into pieces on the beat grid, and pieces back into MIDI.

A piece's roll is a bool array of shape (steps, 88), time first; column k is MIDI pitch 21 + k (A0..C8).
Steps lie on the beat grid: `steps_per_beat` rows per quarter note, counted in the file's own ticks
(`tick * steps_per_beat / ticks_per_quarter`, half a step rounded up, so a note never moves back
into the beat before), so tempo changes move nothing on the grid. A file is read as a pianist hears
it: the sustain pedal (CC64) holds a released note until the pedal is lifted or its key is struck
again; a key struck again before its release ends its note there; a note of no length sounds one
step. Drum tracks are left out, every pitched instrument is merged into one roll, notes off the
keyboard are dropped, and velocity and the pedal's events are not kept. Beside the roll go its onsets
(the keys struck at each step), its `Grid` (read from and written as MIDI time signatures, its phrase
ends as the text events "fermata" and "fermata end") and its tempo map: together a `Piece`. Two notes
of one key starting on one step are one note on the grid. Every kind of change or loss is counted in
the piece's `Reading`. Nothing here imports torch.
"""

from __future__ import annotations

import math
import stat
from bisect import bisect_right
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import mido
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
from musiclstm.music.grid import MAX_ROLL_STEPS, Grid, bar_steps, merged_spans
from musiclstm.music.piece import Piece, Reading, roll_to_notes

MIDI_HEADER = b"MThd"
WRITE_RESOLUTION = 960  # ticks per quarter note in files we write: divisible by 1-6, 8, 10, 12, 15, 16
MAX_FILE_TICKS = 10_000_000  # pretty_midi refuses a file whose last event lies past this tick as likely corrupt
END_MARKER = "musiclstm:end"  # a text event that keeps a roll's trailing silence in the file
FERMATA_TEXT = "fermata"  # a text event at the first step of a phrase end (a fermata)
FERMATA_END_TEXT = "fermata end"  # a text event at the step where that phrase end is over
MAX_MIDI_BYTES = 4_000_000  # a long orchestral MIDI file is under 1 MB; this bounds the parsing work
SUSTAIN_PEDAL = 64  # the control change of the sustain (damper) pedal
PEDAL_DOWN = 64  # a sustain pedal value from 64 up holds the dampers off the strings
DRUM_CHANNEL = 9  # General MIDI's channel 10 (counted from 1), as pretty_midi tells drums
MIDI_TEMPO_BPM = 120.0  # the tempo MIDI plays at where a file sets none

KeyEvent = tuple[int, int, int, int, bool]  # (tick, track, channel, pitch, whether pressed: else released)
PedalEvent = tuple[int, int, bool]  # (tick, channel, whether the sustain pedal is down from there)


def empty_roll(n_steps: int) -> np.ndarray:
    """Return a silent roll of `n_steps` steps."""
    return np.zeros((n_steps, N_KEYS), dtype=bool)


def nearest_step(position: float) -> int:
    """The step nearest a position counted in steps, half a step rounded up (never to the even step: thirty-seconds
    at 0.5, 1.5, 2.5 and 3.5 land on 1, 2, 3 and 4, not 0, 2, 2 and 4)."""
    return math.floor(position + 0.5)


def tick_to_step(tick: int, steps_per_beat: int, ticks_per_beat: int) -> int:
    """The step nearest a tick of a file, half a step rounded up (exact in whole numbers): how every tick is read."""
    return (2 * tick * steps_per_beat + ticks_per_beat) // (2 * ticks_per_beat)


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
    """Raise a named error unless `path` is a non-empty regular file, not too big, that starts like a Standard MIDI
    File. Anything but a regular file (a FIFO, a device, a folder) is refused by its name before it is opened:
    reading a FIFO would wait for a writer for ever."""
    try:
        mode = path.stat().st_mode
    except OSError as err:
        raise MusicLSTMError(f"{path}: cannot be read ({err.strerror})") from err
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a special file"
        raise MusicLSTMError(f"{path}: {kind}, not a regular file; give a MIDI file")
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


class PerformedMIDI(pretty_midi.PrettyMIDI):
    """A parsed MIDI file that also keeps its key presses and releases and its sustain-pedal changes, in ticks.

    pretty_midi ends every open note of a key at its first release and drops a note of no length; the
    events taken during the one parse let `played_notes` pair them as a pianist plays them instead.
    `_load_instruments` is the step of pretty_midi's constructor (0.2.10 on) that sees every event with
    its tick; 0.2.10 cannot be given a parsed file, and parsing twice would cost two thirds more.
    """

    key_events: list[KeyEvent]
    pedal_events: list[PedalEvent]

    def _load_instruments(self, midi_data: mido.MidiFile) -> None:
        """pretty_midi's own reading of the notes, given each track's events with their times in absolute ticks."""
        self.key_events, self.pedal_events = key_and_pedal_events(midi_data)
        super()._load_instruments(midi_data)


def key_and_pedal_events(midi_data: mido.MidiFile) -> tuple[list[KeyEvent], list[PedalEvent]]:
    """Every key press and release (a note-on of velocity 0 is a release) and every sustain-pedal change of a file
    whose event times are absolute ticks, track by track in file order."""
    keys: list[KeyEvent] = []
    pedals: list[PedalEvent] = []
    for track_index, track in enumerate(midi_data.tracks):
        for message in track:
            if message.type in ("note_on", "note_off"):
                is_press = message.type == "note_on" and message.velocity > 0
                keys.append((message.time, track_index, message.channel, message.note, is_press))
            elif message.type == "control_change" and message.control == SUSTAIN_PEDAL:
                pedals.append((message.time, message.channel, message.value >= PEDAL_DOWN))
    return keys, pedals


def load_midi(path: str | Path) -> PerformedMIDI:
    """Parse a MIDI file, naming the file and the reason when it cannot be parsed."""
    path = Path(path)
    check_midi_header(path)
    try:
        return PerformedMIDI(str(path))
    except Exception as err:  # mido and pretty_midi raise many types for broken files
        raise MusicLSTMError(f"{path}: unreadable MIDI ({type(err).__name__}: {err})") from err


def pedal_holds(pedal_events: Iterable[PedalEvent], end_tick: int) -> dict[int, tuple[list[int], list[int]]]:
    """Each channel's spans of the sustain pedal held down: (first ticks, ticks where it is lifted), increasing.

    Of several changes at one tick the last in the file counts; a pedal never lifted holds to `end_tick`.
    """
    state_at: dict[int, dict[int, bool]] = defaultdict(dict)
    for tick, channel, is_down in sorted(pedal_events, key=lambda event: event[0]):  # stable: file order kept
        state_at[channel][tick] = is_down
    holds = {}
    for channel, states in state_at.items():
        starts, ends, down_since = [], [], None
        for tick, is_down in states.items():  # in tick order: the ticks were added sorted
            if is_down and down_since is None:
                down_since = tick
            elif not is_down and down_since is not None:
                starts.append(down_since)
                ends.append(tick)
                down_since = None
        if down_since is not None:
            starts.append(down_since)
            ends.append(max(end_tick, down_since))
        holds[channel] = (starts, ends)
    return holds


def sustained_until(holds: tuple[list[int], list[int]], release: int) -> int:
    """The tick where a key released at `release` stops sounding: where the pedal is lifted if it is down then."""
    starts, ends = holds
    index = bisect_right(starts, release) - 1
    return ends[index] if index >= 0 and release < ends[index] else release


def played_notes(
    key_events: Iterable[KeyEvent], pedal_events: Iterable[PedalEvent], end_tick: int, pedal: bool = True
) -> tuple[list[tuple[int, int, int]], Counter]:
    """The notes a pianist hears from a file's key events, as (pitch, start tick, end tick), and what was changed.

    A release ends the earliest open press of its key on its track and channel (first in, first out).
    A key struck again before its release ends the note sounding there (counted `overlapping`); with
    `pedal`, a note released while its channel's sustain pedal is down sounds until the pedal is lifted
    or its key is struck again (`pedal_held`; without, `pedal_ignored`). Drum notes (channel 10), notes
    off the 88 keys and presses never released are left out and counted by press (`drum_notes`,
    `off_keyboard`, `unended`).
    """
    counts: Counter = Counter()
    open_presses: dict[tuple[int, int, int], deque[int]] = defaultdict(deque)
    played: dict[tuple[int, int, int], list[tuple[int, int]]] = defaultdict(list)
    for tick, track, channel, pitch, is_press in key_events:
        if channel == DRUM_CHANNEL or not LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
            counts["drum_notes" if channel == DRUM_CHANNEL else "off_keyboard"] += is_press
        elif is_press:
            open_presses[track, channel, pitch].append(tick)
        elif open_presses[track, channel, pitch]:  # a release with no press open is ignored
            played[track, channel, pitch].append((open_presses[track, channel, pitch].popleft(), tick))
    counts["unended"] = sum(len(presses) for presses in open_presses.values())
    holds = pedal_holds(pedal_events, end_tick)
    notes = []
    for (_, channel, pitch), presses in played.items():
        presses.sort()
        starts = [start for start, _ in presses]
        for start, release in presses:
            later = bisect_right(starts, start)
            struck_again = starts[later] if later < len(starts) else None
            if struck_again is not None and release > struck_again:
                counts["overlapping"] += 1
                notes.append((pitch, start, struck_again))
                continue
            held = sustained_until(holds.get(channel, ([], [])), release)
            held = held if struck_again is None else min(held, struck_again)
            if held > release:
                counts["pedal_held" if pedal else "pedal_ignored"] += 1
            notes.append((pitch, start, held if pedal else release))
    return notes, counts


def midi_to_roll(path: str | Path, steps_per_beat: int, pedal: bool = True) -> Piece:
    """Read a MIDI file into a piece on the beat grid: its roll, struck keys, metre, tempo map and what was changed.

    Notes are read as a pianist hears them (`played_notes`): with `pedal`, the sustain pedal holds a
    released note until it is lifted. A note's start and end go to the nearest step, half a step
    later. A note shorter than one step, or of no length, still sounds for one step. Every note's
    start is an onset, even with no gap before it. The roll runs from tick 0 to the file's last event,
    so silence at either end is kept. The grid comes from the time-signature events
    (`Grid.from_bar_lines`): each starts a bar on its step, rounded to the grid, and is kept as written
    (6/8 stays 6/8, not the 3/4 its steps would say); 4/4 from step 0 where the file says nothing. Its
    phrase ends come from the text events "fermata" and "fermata end" (`text_spans`), as written. The
    tempo map holds each tempo change on its step (120 bpm from step 0 where the file sets none). The
    piece is named by the file's path; its `reading` counts every kind of change and loss.

    Raises:
        MusicLSTMError: the file is missing, not a regular file, empty, not MIDI, too big or too long, cannot
            be parsed, `steps_per_beat` is not a whole number from 1 to MAX_STEPS_PER_BEAT, or `pedal` is not
            True or False.
    """
    check_whole_number("steps_per_beat", steps_per_beat, 1, MAX_STEPS_PER_BEAT)
    if not isinstance(pedal, bool):
        raise MusicLSTMError(f"pedal must be True (apply the sustain pedal) or False, got {pedal!r}")
    midi = load_midi(path)

    def is_off_grid(tick: int) -> bool:
        return bool(tick * steps_per_beat % midi.resolution)

    def to_step(tick: int) -> int:
        return tick_to_step(tick, steps_per_beat, midi.resolution)

    end_tick = midi.time_to_tick(midi.get_end_time())
    notes, counts = played_notes(midi.key_events, midi.pedal_events, end_tick, pedal)
    spans: list[tuple[int, int, int]] = []
    for pitch, start, end in notes:
        counts["zero_length"] += end == start
        counts["off_grid"] += is_off_grid(start) or (end > start and is_off_grid(end))
        first = to_step(start)
        spans.append((pitch, first, max(to_step(end), first + 1)))
    n_steps = max([to_step(end_tick)] + [end for _, _, end in spans])
    if n_steps > MAX_ROLL_STEPS:
        raise MusicLSTMError(
            f"{path}: {n_steps:,} steps long at {steps_per_beat} per beat, over the limit of {MAX_ROLL_STEPS:,}"
        )
    roll, onsets, n_merged = spans_to_roll(spans, n_steps)
    bar_lines = [
        (
            to_step(midi.time_to_tick(signature.time)),
            bar_steps(signature.numerator, signature.denominator, steps_per_beat),
            (signature.numerator, signature.denominator),
        )
        for signature in midi.time_signature_changes
    ]
    phrase_ends = text_spans([(to_step(midi.time_to_tick(text.time)), text.text) for text in midi.text_events])
    grid = Grid.from_bar_lines(steps_per_beat, bar_lines).with_phrase_ends(phrase_ends)
    reading = Reading(len(spans), n_merged=n_merged, **{f"n_{kind}": count for kind, count in counts.items()})
    return Piece(roll, onsets, grid, tempo_map(midi, steps_per_beat), str(path), reading)


def text_spans(texts: Iterable[tuple[int, str]]) -> tuple[tuple[int, int], ...]:
    """The phrase ends that (step, text) events mark: from each FERMATA_TEXT to the next FERMATA_END_TEXT (case and
    spaces around aside), as `Grid.phrase_ends`. A fermata not ended lasts one step, or to the next fermata;
    an end with none open, and other texts, are ignored; spans that overlap are joined."""
    spans, first = [], None
    kinds = {FERMATA_TEXT: 1, FERMATA_END_TEXT: 0}  # at one step an end comes before the next fermata
    marks = sorted((step, kinds[text.strip().lower()]) for step, text in texts if text.strip().lower() in kinds)
    for step, is_first in marks:
        if first is not None and (step > first or not is_first):
            spans.append((first, max(step, first + 1)))
            first = None
        if is_first and first is None:
            first = step
    if first is not None:
        spans.append((first, first + 1))
    return merged_spans(spans)


def tempo_map(midi: pretty_midi.PrettyMIDI, steps_per_beat: int) -> tuple[tuple[int, float], ...]:
    """A file's tempo changes as (step, beats per minute), the first at step 0; a change is in force from the
    step whose start lies at or after its tick (a step's tempo is the one in force at its first tick)."""
    times, tempi = midi.get_tempo_changes()
    changes = {0: MIDI_TEMPO_BPM}
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
    `roll_to_notes`). `grid` writes its metre as time signatures (`Grid.time_signatures`: those
    read from a file as written, 6/8 as 6/8; sections after the roll's end are left out); None is 4/4
    from step 0. `velocity` is a number, or a function of a note's start step. A text event marks the
    roll's last step, so trailing silence survives a round trip; the grid's phrase ends within the roll
    are text events too: "fermata" at each one's first step, "fermata end" at its end. The resolution is
    `write_resolution`'s, so a roll of any length up to MAX_ROLL_STEPS reads back.

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
    for first, end in grid.cropped(roll.shape[0]).phrase_ends:
        midi.text_events.append(pretty_midi.Text(FERMATA_TEXT, first * seconds_per_step))
        midi.text_events.append(pretty_midi.Text(FERMATA_END_TEXT, end * seconds_per_step))
    midi.text_events.append(pretty_midi.Text(END_MARKER, roll.shape[0] * seconds_per_step))
    return midi


def piece_to_midi(piece: Piece, program: int = 0, velocity: int | Callable[[int], int] = 90) -> pretty_midi.PrettyMIDI:
    """Write a piece as one instrument at its first tempo (brought within TEMPO_RANGE_BPM, as a file read may set any),
    with its struck notes, its metre and its phrase ends (`roll_to_midi`)."""
    low, high = TEMPO_RANGE_BPM
    tempo_bpm = min(max(piece.tempo_bpm, low), high)
    return roll_to_midi(piece.roll, piece.steps_per_beat, tempo_bpm, program, velocity, piece.onsets, piece.grid)
