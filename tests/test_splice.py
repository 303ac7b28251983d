"""Writing a piece back with only its gap rewritten: every track, part, drum, velocity and tempo change of the file
kept, notes cut at the gap's start and struck again at its end, the model's notes on a track of their own."""

from __future__ import annotations

import hashlib
import io
import json
import logging
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

from musiclstm import MusicLSTMError, generate, harmonize, infill, save_pieces
from musiclstm.cli import main
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece
from musiclstm.music.splice import splice_gap

TICKS_PER_BEAT = 480
BAR = 4 * TICKS_PER_BEAT


def midi_bytes(tracks: list[list[tuple[int, mido.Message]]]) -> bytes:
    """A type-1 file of tracks given as (absolute tick, message), put in order of tick (stably)."""
    file = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    for events in tracks:
        track, last = mido.MidiTrack(), 0
        for tick, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=tick - last))
            last = tick
        file.tracks.append(track)
    buffer = io.BytesIO()
    file.save(file=buffer)
    return buffer.getvalue()


def notes(channel: int, spans: list[tuple[int, int, int, int]]) -> list[tuple[int, mido.Message]]:
    """(pitch, velocity, start tick, end tick) notes of one channel as (tick, message), note-offs first at a tick."""
    events = [(end, 0, mido.Message("note_off", channel=channel, note=pitch)) for pitch, _, _, end in spans]
    events += [
        (start, 1, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity))
        for pitch, velocity, start, _ in spans
    ]
    return [(tick, message) for tick, _, message in sorted(events, key=lambda event: event[:2])]


def tempo(tick: int, bpm: float) -> tuple[int, mido.MetaMessage]:
    return tick, mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


def heard(midi: mido.MidiFile) -> dict[int, list[tuple[int, int, int, int]]]:
    """Each channel's notes as (pitch, velocity, start tick, end tick), sorted."""
    found, waiting = {}, {}
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                waiting[message.channel, message.note] = (tick, message.velocity)
            elif message.type in ("note_on", "note_off"):
                start, velocity = waiting.pop((message.channel, message.note))
                found.setdefault(message.channel, []).append((message.note, velocity, start, tick))
    return {channel: sorted(spans) for channel, spans in found.items()}


def gap_piece(n_steps: int, gap: tuple[int, int]) -> Piece:
    """A piece at 4 steps per beat whose gap holds one note: middle C for its first four steps."""
    roll = np.zeros((n_steps, 88), dtype=bool)
    roll[gap[0] : gap[0] + 4, 60 - 21] = True
    return Piece(roll, grid=Grid(4))


def test_notes_are_cut_at_the_gaps_start_struck_again_at_its_end_and_replaced_inside_it_the_rest_kept():
    source = midi_bytes(
        [
            [tempo(0, 60), tempo(1200, 140)],
            notes(0, [(62, 50, 0, 480), (64, 51, 480, 1200), (65, 52, 1080, 1440), (67, 53, 1440, 2400)])
            + [(1000, mido.Message("control_change", channel=0, control=64, value=127))],
            notes(0, [(69, 54, 600, 2400), (71, 55, 1200, 2160)])
            + [(0, mido.Message("program_change", channel=0, program=40))],
            notes(9, [(36, 100, 1200, 1260)]),
        ]
    )
    midi, kept = splice_gap(source, gap_piece(24, (8, 16)), (8, 16), lambda step: 70 + step)  # ticks 960-1920
    assert heard(midi) == {
        0: [
            *[(62, 50, 0, 480), (64, 51, 480, 960), (67, 53, 1920, 2400), (69, 54, 600, 960), (69, 54, 1920, 2400)],
            (71, 55, 1920, 2160),  # begun inside the gap: its part after it kept
        ],
        1: [(60, 78, 960, 1440)],  # the gap's note on the first free channel, velocity by its start step (8)
        9: [(36, 100, 1200, 1260)],  # the drums play on through the gap
    }
    assert [(message.type, message.value) for message in midi.tracks[1] if message.type == "control_change"] == [
        ("control_change", 127)
    ]
    tempos = [mido.tempo2bpm(message.tempo) for message in midi.tracks[0] if message.type == "set_tempo"]
    assert tempos == pytest.approx([60, 140], abs=1e-3)
    assert kept["notes"] == {"kept": 1, "cut_at_gap_start": 2, "struck_again_at_gap_end": 3, "replaced": 1}
    assert kept["gap_part"] == {"track": 4, "channel": 1, "program": 0, "notes": 1}
    assert kept["parts"] == [
        {"track": 1, "channel": 0, "program": 40, "drums": False, "notes": 4},
        {"track": 2, "channel": 0, "program": 40, "drums": False, "notes": 2},
        {"track": 3, "channel": 9, "program": 0, "drums": True, "notes": 1},
    ]
    assert (kept["tracks"], kept["tempo_changes"], kept["drum_notes"]) == (4, 2, 1)
    assert kept["seconds"] == pytest.approx(1200 / 480 + (2400 - 1200) / 480 * 60 / 140, abs=1e-3)
    assert [message.program for message in midi.tracks[4] if message.type == "program_change"] == [0]


def test_a_tempo_asked_for_scales_the_whole_tempo_map_and_none_keeps_it():
    source = midi_bytes([[tempo(0, 60), tempo(960, 90)], notes(0, [(60, 80, 0, 1920 * 2)])])
    piece = gap_piece(32, (8, 16))
    for asked, expected in ((None, [60, 90]), (120, [120, 180])):
        midi, kept = splice_gap(source, piece, (8, 16), lambda step: 80, tempo_bpm=asked)
        tempos = [mido.tempo2bpm(message.tempo) for message in midi.tracks[0] if message.type == "set_tempo"]
        assert tempos == pytest.approx(expected, abs=1e-3)
        assert kept["tempo_scaled_to_bpm"] == asked


def test_a_file_with_no_free_channel_plays_the_gap_on_its_last_channel_and_says_so(caplog):
    parts = [notes(channel, [(60 + channel, 80, 0, 3840)]) for channel in range(16)]
    with caplog.at_level(logging.WARNING):
        midi, kept = splice_gap(midi_bytes(parts), gap_piece(32, (8, 16)), (8, 16), lambda step: 80)
    assert kept["gap_part"] == {"track": 16, "channel": 15, "program": None, "notes": 1}
    assert not [message for message in midi.tracks[16] if message.type == "program_change"]
    assert "uses all 15 channels but the drums'" in caplog.text


def test_bytes_that_are_not_a_midi_file_are_refused_by_name():
    with pytest.raises(MusicLSTMError, match="the piece's original MIDI file cannot be read"):
        splice_gap(b"MThd but no more", gap_piece(32, (8, 16)), (8, 16), lambda step: 80)


def two_part_piece(path) -> None:
    """Six bars of 4/4: a violin (channel 0, program 40) and a piano (channel 1), tempo 60, then 140 from bar 3,
    90 from bar 5, and a drum track; notes of each part cross the start (bar 2) and the end (bar 4) of bars 2-3."""
    violin = [(76 + n % 5, 40 + 3 * n, n * 480, (n + 1) * 480) for n in range(24) if n not in (3, 4, 11, 12)]
    violin += [(72, 90, 3 * 480, 5 * 480), (74, 91, 11 * 480, 13 * 480)]  # across the gap's start, then its end
    piano = [(48 + n % 7, 60 + n, n * 960, (n + 1) * 960) for n in range(12)] + [(36, 99, 1440, 6240)]  # across both
    drums = [(42, 100 + n % 3, n * 480, n * 480 + 120) for n in range(24)]
    conductor = [tempo(0, 60), tempo(2 * BAR, 140), tempo(4 * BAR, 90)]
    conductor.append((0, mido.MetaMessage("time_signature", numerator=4, denominator=4)))
    path.write_bytes(
        midi_bytes(
            [
                conductor,
                [(0, mido.Message("program_change", channel=0, program=40)), *notes(0, violin)],
                [(0, mido.Message("program_change", channel=1, program=0)), *notes(1, piano)],
                notes(9, drums),
            ]
        )
    )


def outside(notes: list[pretty_midi.Note], midi: pretty_midi.PrettyMIDI, first: int, last: int) -> list[tuple]:
    """What the splice keeps of an instrument's notes, as (pitch, velocity, start tick, end tick): each note's
    parts outside the ticks [first, last)."""
    kept = []
    for note in notes:
        start, end = midi.time_to_tick(note.start), midi.time_to_tick(note.end)
        if end <= first or start >= last:
            kept.append((note.pitch, note.velocity, start, end))
            continue
        if start < first:
            kept.append((note.pitch, note.velocity, start, first))
        if end > last:
            kept.append((note.pitch, note.velocity, last, end))
    return sorted(kept)


def as_ticks(notes: list[pretty_midi.Note], midi: pretty_midi.PrettyMIDI) -> list[tuple]:
    ticks = midi.time_to_tick
    return sorted((note.pitch, note.velocity, ticks(note.start), ticks(note.end)) for note in notes)


def test_an_infill_of_a_two_part_piece_keeps_its_parts_drums_tempos_and_velocities_outside_the_gap(tmp_path, capsys):
    path = tmp_path / "two_parts.mid"
    two_part_piece(path)
    out = tmp_path / "out"
    code = main(["infill", str(path), "--bars", "2-3", "--join", "4", "--particles", "2", "--seed", "3",
                 "--out", str(out), "--no-audio"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    original, written = pretty_midi.PrettyMIDI(str(path)), pretty_midi.PrettyMIDI(str(out / "piece_1.mid"))
    parts = [(instrument.program, instrument.is_drum) for instrument in original.instruments]
    assert parts == [(40, False), (0, False), (0, True)]
    assert [(instrument.program, instrument.is_drum) for instrument in written.instruments] == [*parts, (0, False)]
    for times in (0, 1):
        assert np.allclose(written.get_tempo_changes()[times], original.get_tempo_changes()[times])
    assert [(s.numerator, s.denominator) for s in written.time_signature_changes] == [(4, 4)]
    assert abs(written.get_end_time() - original.get_end_time()) <= written.tick_to_time(1)
    first, last = BAR, 3 * BAR
    for was, now in zip(original.instruments, written.instruments, strict=False):
        expected = as_ticks(was.notes, original) if was.is_drum else outside(was.notes, original, first, last)
        assert as_ticks(now.notes, written) == expected
    gap = as_ticks(written.instruments[3].notes, written)
    assert gap and all(first <= start < end <= last for _, _, start, end in gap)
    record = json.loads((out / "piece_1.json").read_text())["kept"]
    assert record["tempo_changes"] == 3 and record["drum_notes"] == 24 and record["tracks"] == 4
    assert record["gap_part"]["channel"] == 2 and record["gap_part"]["notes"] == len(gap)
    assert record["notes"]["cut_at_gap_start"] == 2 and record["notes"]["struck_again_at_gap_end"] == 2


# sha256 of the MIDI file infill writes of bars 2-3 of `two_part_piece` as the bundled model composes them (seed 5):
# the piece's own file with the gap rewritten; a change to what is kept, cut or written in the gap must be deliberate.
SPLICED = "fa123d5b13171fb3576e07116cb540a8f280721bd9b0ca0469394fdf65934248"


def test_infill_writes_the_same_spliced_midi_bytes_seed_for_seed(tmp_path):
    path = tmp_path / "two_parts.mid"
    two_part_piece(path)
    composition = infill(path, bars="2-3", join_steps=4, particles=2, seed=5)
    (piece,) = save_pieces(composition, tmp_path / "out", audio=False)
    assert hashlib.sha256(Path(piece["files"]["midi"]).read_bytes()).hexdigest() == SPLICED


def test_a_harmonization_keeps_the_melodys_part_drums_and_tempo_map_from_its_first_bar(tmp_path):
    """A violin melody that starts in bar 2 with a bass line under it, drums and tempos 80 then 140: the file written
    is bars 2-3 of it, the violin's notes and velocities as they were, its bass replaced by the model's voices."""
    melody = [(76, 70 + 3 * n, BAR + n * TICKS_PER_BEAT, BAR + (n + 1) * TICKS_PER_BEAT) for n in range(8)]
    bass = [(48, 60, BAR + n * 2 * TICKS_PER_BEAT, BAR + (n + 1) * 2 * TICKS_PER_BEAT) for n in range(4)]
    drums = [(36, 100, tick, tick + 60) for tick in range(0, 3 * BAR, TICKS_PER_BEAT)]
    conductor = [tempo(0, 80), tempo(2 * BAR, 140), (0, mido.MetaMessage("time_signature", numerator=4))]
    violin = [(0, mido.Message("program_change", channel=0, program=40)), *notes(0, melody)]
    source = tmp_path / "tune.mid"
    source.write_bytes(midi_bytes([conductor, violin, notes(1, bass), notes(9, drums)]))
    composition = harmonize(source, seed=2, lookahead=2)
    assert composition.source_step == 16 and composition.rolls.shape[1] == 32  # from bar 2, two bars
    (entry,) = save_pieces(composition, tmp_path / "out", audio=False)
    written = mido.MidiFile(tmp_path / "out" / "piece_1.mid")
    by_channel = heard(written)
    assert by_channel[0] == [(pitch, velocity, start - BAR, end - BAR) for pitch, velocity, start, end in melody]
    assert 1 not in by_channel  # the bass is the model's now
    assert by_channel[9] == [(36, 100, tick - BAR, tick - BAR + 60) for tick in range(BAR, 3 * BAR, TICKS_PER_BEAT)]
    voices = by_channel[entry["kept"]["gap_part"]["channel"]]
    assert voices and all(pitch < 76 for pitch, *_ in voices)
    tempos = [
        (tick, round(mido.tempo2bpm(message.tempo))) for tick, message in timed(written) if message.type == "set_tempo"
    ]
    assert tempos == [(0, 80), (BAR, 140)]
    programs = [message.program for _, message in timed(written) if message.type == "program_change"]
    assert 40 in programs


def timed(midi: mido.MidiFile) -> list[tuple[int, mido.Message]]:
    """Every message of the file with its absolute tick."""
    found = []
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            found.append((tick, message))
    return found


def test_a_continuation_keeps_its_primers_parts_drums_and_tempo_map_and_goes_on_after_it(tmp_path):
    """A violin and a piano part, drums, tempos 60 then 140, as a primer: the file written is the primer as it was,
    then the model's music from the primer's end, at the primer's last tempo."""
    violin = [(76, 90, n * TICKS_PER_BEAT, (n + 1) * TICKS_PER_BEAT) for n in range(8)]
    piano = [(48, 50, n * 2 * TICKS_PER_BEAT, (n + 1) * 2 * TICKS_PER_BEAT) for n in range(4)]
    drums = [(36, 100, tick, tick + 60) for tick in range(0, 2 * BAR, TICKS_PER_BEAT)]
    conductor = [tempo(0, 60), tempo(BAR, 140)]
    violin_part = [(0, mido.Message("program_change", channel=0, program=40)), *notes(0, violin)]
    source = tmp_path / "primer.mid"
    source.write_bytes(midi_bytes([conductor, violin_part, notes(1, piano), notes(9, drums)]))
    composition = generate(None, source, length=16, seed=4)
    assert composition.primer_steps == 32 and composition.settings["tempo_bpm"] == 60.0
    (entry,) = save_pieces(composition, tmp_path / "out", audio=False)
    written = mido.MidiFile(tmp_path / "out" / "piece_1.mid")
    by_channel = heard(written)
    assert (by_channel[0], by_channel[1], by_channel[9]) == (violin, piano, drums)
    made = by_channel[entry["kept"]["gap_part"]["channel"]]
    assert made and min(start for _, _, start, _ in made) >= 2 * BAR
    tempos = [(tick, message.tempo) for tick, message in timed(written) if message.type == "set_tempo"]
    assert [(tick, round(mido.tempo2bpm(value))) for tick, value in tempos] == [(0, 60), (BAR, 140)]
    assert entry["settings"]["tempo_from"] == "the primer's tempo at its start"
