"""Write a MIDI file back with only what the model wrote changed: every track, part, tempo and event kept.

An infill's gap is rewritten (`splice_gap`); a harmonization adds its voices below the melody of the steps it
harmonized (`splice_voices`, the file cut to them by `crop`). What follows describes the gap; a harmonization's
steps are its gap, but the melody's notes in them stay whole.

The original is read with mido, on its own ticks; a step of the piece read from it lies at
`tick = round(step * ticks_per_beat / steps_per_beat)`, and a tick on the step `roll.tick_to_step` gives. Inside the
gap, steps [start, end), the pitched notes are the model's; everything else is the file's own.
Each pitched note of the file is kept, cut or replaced as the roll saw it (its start and end on steps,
rounded as the reading rounds them): a note wholly outside the gap is kept as it is; one that sounds
into the gap ends at the gap's first tick; one that sounds on after the gap is struck again, with its
own velocity, at the gap's end tick; a note wholly inside the gap is replaced. Drum notes
(channel 10), tempo changes, time signatures, program and control changes, pitch bends and text are
kept as they are, inside the gap too: the model never reads them. The model's notes go on one new
track, on a channel the file leaves free, as a piano (program 0). The file is written as type 1
(a type-0 file's one track first), at its own resolution. Nothing here imports torch.
"""

from __future__ import annotations

import io
import logging
from collections import defaultdict, deque
from collections.abc import Callable

import mido
import numpy as np

from musiclstm.config import LOWEST_PITCH, MusicLSTMError
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece, roll_to_notes
from musiclstm.music.roll import DRUM_CHANNEL, MIDI_TEMPO_BPM, tick_to_step

log = logging.getLogger(__name__)

GAP_PROGRAM = 0  # the model's notes sound as an acoustic grand piano
GAP_TRACK_NAME = "musiclstm: the rewritten gap"


def read_source(source: bytes) -> mido.MidiFile:
    """The original file's bytes parsed by mido; a file that cannot be is named as such."""
    try:
        return mido.MidiFile(file=io.BytesIO(source))
    except Exception as err:  # mido raises many types for broken files
        raise MusicLSTMError(f"the piece's original MIDI file cannot be read ({type(err).__name__}: {err})") from err


def is_pitched_note(message: mido.Message) -> bool:
    return message.type in ("note_on", "note_off") and message.channel != DRUM_CHANNEL


def is_note_start(message: mido.Message) -> bool:
    return message.type == "note_on" and message.velocity > 0


def paired_notes(events: list[tuple[int, mido.Message]], with_drums: bool = False) -> tuple[dict[int, int], list[int]]:
    """A track's pitched notes (and its drum notes `with_drums`): {index of its note-on: index of its note-off},
    each key of each channel paired first in, first out, and the note-ons never ended."""
    waiting: dict[tuple[int, int], deque[int]] = defaultdict(deque)
    pairs = {}
    for index, (_, message) in enumerate(events):
        if not (is_pitched_note(message) or (with_drums and message.type in ("note_on", "note_off"))):
            continue
        key = (message.channel, message.note)
        if is_note_start(message):
            waiting[key].append(index)
        elif waiting[key]:
            pairs[waiting[key].popleft()] = index
    return pairs, sorted(index for indices in waiting.values() for index in indices)


def splice_track(
    track: mido.MidiTrack,
    gap: tuple[int, int],
    to_tick: Callable[[int], int],
    to_step: Callable[[int], int],
    is_kept: Callable[[int, int], bool] | None = None,
) -> tuple[mido.MidiTrack, dict[str, int]]:
    """One track of the original with its pitched notes in the gap left out, cut at its start or struck again
    at its end (see the module's docstring), but those `is_kept(first step, pitch)` keeps whole; and what became
    of its notes, by count."""
    start, end = gap
    first_tick, last_tick = to_tick(start), to_tick(end)
    events, tick = [], 0
    for message in track:
        tick += message.time
        events.append((tick, message))
    pairs, unended = paired_notes(events)
    counts = dict(kept=0, cut_at_gap_start=0, struck_again_at_gap_end=0, replaced=0)
    dropped = set()
    placed = []  # (tick, order among the events of that tick, message)
    for on, off in pairs.items():
        (on_tick, on_message), (off_tick, off_message) = events[on], events[off]
        first_step = to_step(on_tick)
        last_step = max(to_step(off_tick), first_step + 1)  # a note shorter than a step sounds a step, as read
        if last_step <= start or first_step >= end or (is_kept is not None and is_kept(first_step, on_message.note)):
            counts["kept"] += 1
            continue
        dropped |= {on, off}
        is_cut = first_step < start and on_tick < first_tick
        is_struck_again = last_step > end and off_tick > last_tick
        if is_cut:  # its note-off before anything else of that tick: nothing of it sounds in the gap
            placed += [(on_tick, on, on_message), (first_tick, -1, off_message)]
        if is_struck_again:  # after everything else of that tick, as the program in force there has been set
            placed += [(last_tick, len(events), on_message), (off_tick, off, off_message)]
        counts["cut_at_gap_start"] += is_cut
        counts["struck_again_at_gap_end"] += is_struck_again
        counts["replaced"] += not (is_cut or is_struck_again)
    dropped |= {index for index in unended if start <= to_step(events[index][0]) < end}
    placed += [(tick, index, message) for index, (tick, message) in enumerate(events) if index not in dropped]
    return as_track(placed, track.name), counts


def as_track(placed: list[tuple[int, int, mido.Message]], name: str = "") -> mido.MidiTrack:
    """A track of (tick, order, message): sorted by tick, then order (stable), each message's delta time set."""
    track, last = mido.MidiTrack(), 0
    for tick, _, message in sorted(placed, key=lambda event: event[:2]):
        track.append(message.copy(time=tick - last))
        last = tick
    return track


def first_tempo_bpm(midi: mido.MidiFile) -> float:
    """The tempo in force at tick 0 as pretty_midi, and so musiclstm, reads it: the first track's last at tick 0."""
    tempo_bpm, tick = MIDI_TEMPO_BPM, 0
    for message in midi.tracks[0]:
        tick += message.time
        if tick > 0:
            break
        if message.type == "set_tempo":
            tempo_bpm = mido.tempo2bpm(message.tempo)
    return tempo_bpm


def scale_tempos(track: mido.MidiTrack, factor: float) -> mido.MidiTrack:
    """The track with every tempo change `factor` times as fast (MIDI's limits kept)."""
    return mido.MidiTrack(
        message.copy(tempo=min(max(round(message.tempo / factor), 1), 0xFFFFFF))
        if message.type == "set_tempo"
        else message
        for message in track
    )


def free_channel(midi: mido.MidiFile) -> int | None:
    """The first channel no event of the file uses, the drums' left out; None where all 15 are taken."""
    used = {message.channel for track in midi.tracks for message in track if hasattr(message, "channel")}
    return next((channel for channel in range(16) if channel not in used | {DRUM_CHANNEL}), None)


def gap_track(
    piece: Piece, gap: tuple[int, int], channel: int, program: int | None, to_tick, velocity: Callable[[int], int]
) -> tuple[mido.MidiTrack, int]:
    """The piece's notes in the gap as a track of their own on `channel` (with `program` set at its start, unless
    None), each note cut at the gap's end; and their number."""
    start, end = gap
    notes = roll_to_notes(piece.roll[start:end], piece.onsets[start:end])
    placed = [(0, 0, mido.MetaMessage("track_name", name=GAP_TRACK_NAME))]
    if program is not None:
        placed.append((0, 1, mido.Message("program_change", channel=channel, program=program)))
    for pitch, first, last in notes:  # a key ending where it starts again: its note-off first (order 2 before 3)
        on = mido.Message("note_on", channel=channel, note=pitch, velocity=velocity(start + first))
        off = mido.Message("note_off", channel=channel, note=pitch)
        placed += [(to_tick(start + first), 3, on), (to_tick(start + last), 2, off)]
    return as_track(placed), len(notes)


def splice_gap(
    source: bytes,
    piece: Piece,
    gap: tuple[int, int],
    velocity: Callable[[int], int],
    tempo_bpm: float | None = None,
    is_kept: Callable[[int, int], bool] | None = None,
) -> tuple[mido.MidiFile, dict]:
    """The original MIDI file `source` with the pitched notes of the gap's steps [start, end) replaced by `piece`'s
    there (a piece on the grid read from that file), everything else kept (see the module's docstring).

    Args:
        velocity: the model's notes' velocity, 1-127, by their start step in the piece.
        is_kept: which of the file's pitched notes in the gap stay whole, by (first step, pitch); None: none.
        tempo_bpm: None keeps the file's tempo map as it is; a tempo scales every change of it alike, so that
            it starts at `tempo_bpm` beats per minute.

    Returns:
        the file, and what it kept: its tracks, parts (track, channel, program, drums, notes), tempo changes,
        time signatures, what became of its pitched notes, the drum notes, the gap's part and the seconds.
    """
    midi = read_source(source)
    resolution, steps_per_beat = midi.ticks_per_beat, piece.steps_per_beat

    def to_tick(step: int) -> int:
        return round(step * resolution / steps_per_beat)

    def to_step(tick: int) -> int:
        return tick_to_step(tick, steps_per_beat, resolution)

    tracks, totals = [], defaultdict(int)
    for track in midi.tracks:
        spliced, counts = splice_track(track, gap, to_tick, to_step, is_kept)
        tracks.append(spliced)
        for name, count in counts.items():
            totals[name] += count
    file_bpm = first_tempo_bpm(midi)
    if tempo_bpm is not None:
        tracks = [scale_tempos(track, tempo_bpm / file_bpm) for track in tracks]
    channel = free_channel(midi)
    if channel is None:
        log.warning("the file uses all 15 channels but the drums': the gap's notes sound as its last channel's part")
    gap_part, n_gap_notes = gap_track(
        piece, gap, 15 if channel is None else channel, None if channel is None else GAP_PROGRAM, to_tick, velocity
    )
    spliced = mido.MidiFile(type=1, ticks_per_beat=resolution, charset=midi.charset)
    spliced.tracks.extend([*tracks, gap_part])
    kept = {
        "tracks": len(midi.tracks),
        "parts": parts(midi),
        "tempo_changes": count_events(midi, "set_tempo"),
        "tempo_scaled_to_bpm": tempo_bpm if tempo_bpm is not None and tempo_bpm != file_bpm else None,
        "time_signatures": count_events(midi, "time_signature"),
        "notes": dict(totals),
        "drum_notes": sum(
            is_note_start(message) and message.channel == DRUM_CHANNEL for track in midi.tracks for message in track
        ),
        "gap_part": {
            "track": len(midi.tracks),
            "channel": 15 if channel is None else channel,
            "program": None if channel is None else GAP_PROGRAM,
            "notes": n_gap_notes,
        },
        "seconds": round(spliced.length, 3),
    }
    return spliced, kept


def splice_voices(
    source: bytes,
    piece: Piece,
    start: int,
    line: np.ndarray,
    velocity: Callable[[int], int],
    tempo_bpm: float | None = None,
) -> tuple[mido.MidiFile, dict]:
    """A melody file `source` harmonized: its steps [start, start + the piece's steps) alone, everything of the file
    there kept, and the harmonization's voices below the melody added on a track of their own (`splice_gap`'s).

    `piece` is the harmonization, read from the file's step `start` on (the bar of the melody's first note), and
    `line` its melody (key index per step, -1 at a rest). The file's notes on the melody keep their part,
    instrument and velocity; its other pitched notes there are replaced by the voices. The file is cut to the
    harmonized steps (`crop`). Returns the file and what it kept, as `splice_gap` does.
    """
    end = start + piece.n_steps
    line = np.asarray(line)
    below, sounding = piece.roll.copy(), np.flatnonzero(line >= 0)
    below[sounding, line[sounding]] = False
    voices = np.zeros((end, piece.roll.shape[1]), dtype=bool)
    struck = np.zeros_like(voices)
    voices[start:], struck[start:] = below, piece.onsets & below
    aligned = Piece(voices, struck, Grid(piece.steps_per_beat))

    def on_melody(first_step: int, pitch: int) -> bool:
        return 0 <= first_step - start < len(line) and line[first_step - start] == pitch - LOWEST_PITCH

    midi, kept = splice_gap(source, aligned, (start, end), lambda step: velocity(step - start), tempo_bpm, on_melody)
    to_tick = midi.ticks_per_beat / piece.steps_per_beat
    cropped = crop(midi, round(start * to_tick), round(end * to_tick))
    return cropped, dict(kept, seconds=round(cropped.length, 3), from_step=start)


def crop(midi: mido.MidiFile, first_tick: int, last_tick: int) -> mido.MidiFile:
    """The file's ticks [first_tick, last_tick) alone, moved to start at 0: each part's settings in force at
    `first_tick` (tempo, time and key signature, program, controllers, pitch bend) stated at 0, notes cut at both
    ends, nothing after `last_tick`."""
    cropped = mido.MidiFile(type=midi.type, ticks_per_beat=midi.ticks_per_beat, charset=midi.charset)
    for track in midi.tracks:
        events, tick = [], 0
        for message in track:
            tick += message.time
            events.append((tick, message))
        pairs, _ = paired_notes(events, with_drums=True)
        ends = {off: on for on, off in pairs.items()}
        in_force: dict[tuple, int] = {}  # the last setting of each kind before `first_tick`: its event's index
        placed = []  # (tick, order, message): the file's order kept within a tick
        for index, (tick, message) in enumerate(events):
            if message.type in ("note_on", "note_off"):
                if index not in pairs and index not in ends:
                    continue  # a release of nothing sounding, or a note never released: nothing to hear
                on, off = (index, pairs[index]) if index in pairs else (ends[index], index)
                on_tick, off_tick = events[on][0], events[off][0]
                if on_tick < last_tick and off_tick > first_tick and on_tick < off_tick:
                    at = max(on_tick, first_tick) if index == on else min(off_tick, last_tick)
                    order = index if at == tick else (-1 if index == on else len(events) + index)
                    placed.append((at - first_tick, order, message))
            elif message.type == "end_of_track":
                continue
            elif tick < first_tick:
                in_force[(message.type, getattr(message, "channel", None), getattr(message, "control", None))] = index
            elif tick < last_tick:
                placed.append((tick - first_tick, index, message))
        placed += [(0, index - len(events) - 1, events[index][1]) for index in sorted(in_force.values())]
        cropped.tracks.append(as_track(placed, track.name))
    return cropped


def count_events(midi: mido.MidiFile, kind: str) -> int:
    return sum(message.type == kind for track in midi.tracks for message in track)


def parts(midi: mido.MidiFile) -> list[dict]:
    """Each part of a file that plays notes: its track and channel, the program it starts with, whether it is the
    drums, and its notes."""
    notes, programs = defaultdict(int), {}
    for number, track in enumerate(midi.tracks):
        for message in track:
            if is_note_start(message):
                notes[number, message.channel] += 1
            elif message.type == "program_change":
                programs.setdefault(message.channel, message.program)
    return [
        {
            "track": track,
            "channel": channel,
            "program": programs.get(channel, 0),
            "drums": channel == DRUM_CHANNEL,
            "notes": count,
        }
        for (track, channel), count in sorted(notes.items())
    ]
