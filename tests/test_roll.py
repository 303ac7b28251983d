"""MIDI <-> roll: the beat grid, struck keys, the metre, what is left out, named errors, and the round-trip property."""

from __future__ import annotations

import json

import mido
import numpy as np
import pretty_midi
import pytest
from conftest import TICKS_PER_BEAT, write_midi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from musiclstm import MusicLSTMError
from musiclstm.music.grid import MAX_ROLL_STEPS, Grid, signature_of
from musiclstm.music.piece import Piece, onsets_of, roll_to_notes
from musiclstm.music.roll import WRITE_RESOLUTION, midi_to_roll, piece_to_midi, roll_to_midi, steps_to_roll, text_spans

BEAT = TICKS_PER_BEAT


def test_midi_to_roll_places_notes_on_the_beat_grid_whatever_the_tempo_changes(tmp_path):
    # beat 0 at 60 bpm, beat 1 at 200 bpm, beat 2 at 35 bpm: seconds differ wildly, beats do not
    path = write_midi(
        tmp_path / "tempi.mid",
        [(60, 0, BEAT), (64, 2 * BEAT, 3 * BEAT)],
        tempo_changes=((0, 60), (BEAT, 200), (2 * BEAT, 35)),
    )
    read = midi_to_roll(path, steps_per_beat=4)
    assert read.roll.shape == (12, 88)
    assert np.flatnonzero(read.roll[:, 60 - 21]).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(read.roll[:, 64 - 21]).tolist() == [8, 9, 10, 11]
    assert read.roll.sum() == 8


def test_midi_to_roll_uses_the_files_own_resolution(tmp_path):
    path = write_midi(tmp_path / "res96.mid", [(72, 96, 192)], ticks_per_beat=96)
    roll = midi_to_roll(path, steps_per_beat=2).roll
    assert np.flatnonzero(roll[:, 72 - 21]).tolist() == [2, 3]


def test_midi_to_roll_merges_instruments_and_leaves_out_drums(tmp_path):
    path = write_midi(tmp_path / "band.mid", [(60, 0, BEAT)], extra_tracks=1)
    drums = write_midi(tmp_path / "drums.mid", [(36, 0, BEAT)], channel=9)
    merged = midi_to_roll(path, 4)
    assert merged.reading.n_notes == 2 and merged.roll.sum() == 4 and merged.roll[:, 60 - 21].all()
    read = midi_to_roll(drums, 4)
    assert (read.reading.n_notes, read.reading.n_drum_notes, int(read.roll.sum())) == (0, 1, 0)


def test_midi_to_roll_keeps_the_keyboard_edges_and_counts_what_falls_off(tmp_path):
    path = write_midi(tmp_path / "edges.mid", [(21, 0, BEAT), (108, 0, BEAT), (20, 0, BEAT), (109, 0, BEAT)])
    read = midi_to_roll(path, 1)
    assert read.roll[0].nonzero()[0].tolist() == [0, 87]
    assert (read.reading.n_notes, read.reading.n_off_keyboard) == (2, 2)


def test_midi_to_roll_gives_a_note_shorter_than_a_step_one_step(tmp_path):
    path = write_midi(tmp_path / "short.mid", [(60, BEAT, BEAT + 10)])
    roll = midi_to_roll(path, 4).roll
    assert np.flatnonzero(roll[:, 60 - 21]).tolist() == [4]


def test_midi_to_roll_reads_running_status(tmp_path):
    # one track, running status: after the first 0x90 status byte the next events omit it
    events = bytes([0x00, 0x90, 60, 80, 0x00, 64, 80, 0x83, 0x60, 60, 0, 0x00, 64, 0, 0x00, 0xFF, 0x2F, 0x00])
    header = (
        b"MThd" + (6).to_bytes(4, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (480).to_bytes(2, "big")
    )
    path = tmp_path / "running.mid"
    path.write_bytes(header + b"MTrk" + len(events).to_bytes(4, "big") + events)
    roll = midi_to_roll(path, 4).roll
    assert roll.shape == (4, 88) and roll[:, [60 - 21, 64 - 21]].all() and roll.sum() == 8


@pytest.mark.parametrize(
    "content, message",
    [
        (b"", "empty file"),
        (b"RIFF....WAVEfmt ", "not a MIDI file \\(no MThd header\\)"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01", "unreadable MIDI"),
    ],
)
def test_midi_to_roll_names_a_bad_file_and_the_reason(tmp_path, content, message):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    with pytest.raises(MusicLSTMError, match=f"bad.mid: {message}"):
        midi_to_roll(path, 4)


def test_midi_to_roll_names_a_truncated_file(tmp_path):
    path = write_midi(tmp_path / "cut.mid", [(60, 0, BEAT), (62, BEAT, 2 * BEAT)])
    path.write_bytes(path.read_bytes()[:-9])
    with pytest.raises(MusicLSTMError, match="cut.mid: unreadable MIDI"):
        midi_to_roll(path, 4)


def test_midi_to_roll_names_a_data_byte_over_127(tmp_path):
    path = write_midi(tmp_path / "byte.mid", [(60, 0, BEAT)])
    data = bytearray(path.read_bytes())
    data[data.index(bytes([0x90, 60])) + 1] = 0xBC  # the pitch byte of note-on becomes 188
    path.write_bytes(bytes(data))
    with pytest.raises(MusicLSTMError, match="byte.mid: unreadable MIDI"):
        midi_to_roll(path, 4)


def test_midi_to_roll_names_a_missing_file(tmp_path):
    with pytest.raises(MusicLSTMError, match="nothing.mid: cannot be read"):
        midi_to_roll(tmp_path / "nothing.mid", 4)


def test_roll_to_notes_merges_held_steps_into_one_note():
    roll = np.zeros((5, 88), dtype=bool)
    roll[0:3, 0] = True
    roll[4, 0] = True
    roll[1:5, 87] = True
    assert roll_to_notes(roll) == [(21, 0, 3), (21, 4, 5), (108, 1, 5)]


def test_roll_to_notes_of_a_silent_roll_is_empty():
    assert roll_to_notes(np.zeros((0, 88), dtype=bool)) == []
    assert roll_to_notes(np.zeros((7, 88), dtype=bool)) == []


def test_steps_to_roll_builds_the_benchmark_format_and_counts_pitches_off_the_keyboard():
    roll, n_off = steps_to_roll([[60, 64.0], [], [108, 109, 12]])
    assert roll.shape == (3, 88) and n_off == 2
    assert [np.flatnonzero(step).tolist() for step in roll] == [[39, 43], [], [87]]


def test_roll_to_midi_refuses_a_roll_of_the_wrong_width():
    with pytest.raises(MusicLSTMError, match=r"shape \(steps, 88\)"):
        roll_to_midi(np.zeros((4, 12), dtype=bool), 4)


def round_trip(roll: np.ndarray, steps_per_beat: int, tempo_bpm: float, path) -> np.ndarray:
    roll_to_midi(roll, steps_per_beat, tempo_bpm).write(str(path))
    return midi_to_roll(path, steps_per_beat).roll


@settings(max_examples=60, deadline=None)
@given(
    roll=arrays(bool, st.tuples(st.integers(0, 48), st.just(88)), elements=st.booleans()),
    steps_per_beat=st.sampled_from([1, 2, 3, 4, 6, 8, 12]),
    tempo_bpm=st.floats(30, 240),
)
def test_roll_to_midi_to_roll_is_the_identity(tmp_path_factory, roll, steps_per_beat, tempo_bpm):
    back = round_trip(roll, steps_per_beat, tempo_bpm, tmp_path_factory.mktemp("rt") / "piece.mid")
    assert back.shape == roll.shape
    assert np.array_equal(back, roll)


def test_real_chorales_survive_roll_to_midi_to_roll(bach_corpus, tmp_path):
    for piece in bach_corpus:
        back = round_trip(piece.roll, bach_corpus.steps_per_beat, 100.0, tmp_path / "chorale.mid")
        assert np.array_equal(back, piece.roll), piece.name


@pytest.mark.parametrize("steps, steps_per_beat", [(MAX_ROLL_STEPS, 1), (10_417, 1)])
def test_a_roll_as_long_as_musiclstm_reads_survives_roll_to_midi_to_roll(tmp_path, steps, steps_per_beat):
    """At 960 ticks a beat, 10,417 steps at 1 per beat would end past pretty_midi's 10,000,000-tick limit."""
    roll = np.random.default_rng(steps_per_beat).random((steps, 88)) < 0.002
    roll[-1, 40] = True
    assert np.array_equal(round_trip(roll, steps_per_beat, 20.0, tmp_path / "long.mid"), roll)
    assert mido.MidiFile(tmp_path / "long.mid").ticks_per_beat <= WRITE_RESOLUTION


def test_a_grid_in_4_4_at_sixteenths_has_16_steps_per_bar_and_counts_a_begun_bar_whole():
    grid = Grid(4)
    assert (grid.steps_per_bar, grid.n_bars(0), grid.n_bars(16), grid.n_bars(17)) == (16, 1, 1, 2)
    assert list(grid.bar_starts(32)) == [0, 16, 32]
    assert [step for step in range(9) if grid.is_beat_start(step)] == [0, 4, 8]
    assert [grid.is_bar_start(step) for step in (0, 4, 16)] == [True, False, True]


def test_a_grid_with_a_pickup_puts_its_bar_lines_after_it_and_counts_the_pickup_as_a_bar():
    grid = Grid(steps_per_beat=2, beats_per_bar=3, bar_offset=2)
    assert list(grid.bar_starts(14)) == [2, 8, 14]
    assert (grid.n_bars(2), grid.n_bars(3), grid.n_bars(8), grid.n_bars(9)) == (1, 2, 2, 3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"steps_per_beat": 0}, "steps_per_beat must be from 1"),
        ({"beats_per_bar": 2.5}, "beats_per_bar must be a whole number"),
        ({"steps_per_beat": 4, "bar_offset": 16}, "bar_offset must be from 0 to 15, got 16"),
    ],
)
def test_a_grid_out_of_range_is_refused_by_name(fields, message):
    with pytest.raises(MusicLSTMError, match=message):
        Grid(**fields)


def test_place_in_bar_runs_the_first_section_backwards_through_the_pickup_and_follows_each_change():
    # bars of 6 steps from step 2 (a pickup of 2), of 4 from step 14, of 3 from step 22 on
    grid = Grid(steps_per_beat=2, beats_per_bar=3, bar_offset=2, changes=((14, 4), (22, 3)))
    positions = np.array([-3, -1, 0, 1, 2, 7, 8, 13, 14, 17, 18, 21, 22, 24, 25, 40])
    since_bar, bar_length = grid.place_in_bar(positions)
    assert since_bar.tolist() == [1, 3, 4, 5, 0, 5, 0, 5, 0, 3, 0, 3, 0, 2, 0, 0]
    assert bar_length.tolist() == [6, 6, 6, 6, 6, 6, 6, 6, 4, 4, 4, 4, 3, 3, 3, 3]
    assert grid.bar_starts(30).tolist() == [2, 8, 14, 18, 22, 25, 28]
    assert (grid.n_bars(2), grid.n_bars(22), grid.n_bars(30)) == (1, 5, 8)
    assert [grid.is_bar_start(step) for step in (0, 2, 14, 16, 18)] == [False, True, True, False, True]


def test_place_in_bar_keeps_the_shape_of_its_positions():
    since_bar, bar_length = Grid(4).place_in_bar(np.arange(-16, 16).reshape(4, 8))
    assert since_bar.shape == bar_length.shape == (4, 8)
    assert since_bar[0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7] and (bar_length == 16).all()


def test_a_first_bar_of_7_8_is_a_change_at_the_first_bar_line_and_beats_count_from_each_bar_line():
    grid = Grid(4, changes=((0, 14),))
    assert grid.steps_per_bar == 14 and grid.bar_starts(28).tolist() == [0, 14, 28]
    assert [step for step in range(20) if grid.is_beat_start(step)] == [0, 4, 8, 12, 14, 18]
    assert Grid(4, 3, 0, ((0, 14),)) == grid  # no whole number of beats tells the bar: beats_per_bar is 4


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"changes": ((6, 12),)}, r"changes\[0\] \(6, 12\): step 6 is not on a bar line .*bars of 16 steps from 0"),
        ({"changes": ((16, 12), (16, 8))}, r"changes\[1\] \(16, 8\): its step must come after 16"),
        ({"bar_offset": 4, "changes": ((0, 12),)}, r"changes\[0\] \(0, 12\): its step must come after 4"),
        ({"changes": ((16, 16),)}, "keeps the bar of 16 steps of the section before; leave it out"),
        ({"changes": ((0, 12),)}, "a first bar of whole beats is beats_per_bar=3, not a change"),
        ({"bar_offset": 14, "changes": ((14, 10),)}, "bar_offset must be from 0 to 9, got 14"),
        ({"changes": ((16,),)}, r"changes\[0\] must be a \(step, steps per bar\) pair"),
        ({"changes": ((16, 0),)}, r"changes\[0\] steps per bar must be from 1"),
        ({"changes": ((16, 12.0),)}, r"changes\[0\] steps per bar must be a whole number"),
        ({"changes": "16 12"}, "changes must be a tuple of"),
    ],
)
def test_a_grid_whose_changes_are_off_its_bar_lines_is_refused_by_name(fields, message):
    with pytest.raises(MusicLSTMError, match=message):
        Grid(**dict({"steps_per_beat": 4}, **fields))


def test_a_grid_goes_through_json_and_a_dict_without_changes_is_4_4_or_its_own_bar():
    grid = Grid(4, 3, 2, ((14, 10), (24, 16)))
    assert Grid.from_dict(json.loads(json.dumps(grid.to_dict()))) == grid
    assert Grid.from_dict({"steps_per_beat": 4, "beats_per_bar": 3, "bar_offset": 2}) == Grid(4, 3, 2)
    with pytest.raises(MusicLSTMError, match="a grid has no field metre"):
        Grid.from_dict({"steps_per_beat": 4, "metre": "3/4"})


@pytest.mark.parametrize(
    ("bar_lines", "grid"),
    [
        ([], Grid(4)),
        ([(0, 16), (4, 16)], Grid(4, 4, bar_offset=4)),  # the first bar cut short: a pickup
        ([(0, 4), (4, 16)], Grid(4, 1, 0, ((4, 16),))),  # a short first bar of its own time signature
        ([(0, 4), (4, 16), (24, 16)], Grid(4, 1, 0, ((4, 16), (20, 4), (24, 16)))),  # and a bar cut short later
        ([(0, 16), (32, 12), (44, 12)], Grid(4, 4, 0, ((32, 12),))),
        ([(0, 16), (40, 12)], Grid(4, 4, 0, ((32, 8), (40, 12)))),  # a bar cut short later: a bar of its own
        ([(0, 16), (0, 12)], Grid(4, 3)),  # the last stated at a step wins
        ([(0, 14), (2, 14)], Grid(4, 4, 2, ((2, 14),))),  # a pickup of a bar of 7/8
    ],
)
def test_from_bar_lines_reads_pickups_changes_and_bars_cut_short(bar_lines, grid):
    assert Grid.from_bar_lines(4, bar_lines) == grid


@pytest.mark.parametrize(
    ("steps_per_bar", "steps_per_beat", "signature"),
    [(16, 4, (4, 4)), (12, 4, (3, 4)), (14, 4, (7, 8)), (7, 4, (7, 16)), (3, 1, (3, 4)), (4, 3, (3, 8))],
)
def test_a_bar_is_written_in_quarters_when_it_can_be_else_in_the_longest_value_that_reads_back(
    steps_per_bar, steps_per_beat, signature
):
    assert signature_of(steps_per_bar, steps_per_beat) == signature


def test_a_bar_no_time_signature_can_write_is_refused_by_name():
    with pytest.raises(MusicLSTMError, match="a bar of 401 steps at 96 per beat has no time signature"):
        signature_of(401, 96)


def test_onsets_of_a_roll_are_the_keys_turning_on():
    roll = np.zeros((5, 88), dtype=bool)
    roll[0:3, 0] = roll[4, 0] = roll[2:5, 87] = True
    onsets = onsets_of(roll)
    assert np.flatnonzero(onsets[:, 0]).tolist() == [0, 4] and np.flatnonzero(onsets[:, 87]).tolist() == [2]
    assert onsets.sum() == 3


def test_roll_to_notes_starts_a_new_note_where_a_held_key_is_struck_again():
    roll = np.zeros((6, 88), dtype=bool)
    roll[0:6, 39] = roll[1:3, 0] = True
    onsets = np.zeros_like(roll)
    onsets[[0, 2, 3], 39] = onsets[1, 0] = onsets[5, 1] = True  # key 1 is silent: its onset means nothing
    assert roll_to_notes(roll, onsets) == [(21, 1, 3), (60, 0, 2), (60, 2, 3), (60, 3, 6)]
    assert roll_to_notes(roll) == [(21, 1, 3), (60, 0, 6)]
    with pytest.raises(MusicLSTMError, match=r"onsets must have the roll's shape \(6, 88\), got \(5, 88\)"):
        roll_to_notes(roll, onsets[:5])


def test_midi_to_roll_strikes_a_repeated_note_again_and_counts_unisons_as_merged(tmp_path):
    # the note track twice (channels 0 and 1): every note has a unison twin starting on its step
    notes = [(60, 0, BEAT), (60, BEAT, 2 * BEAT), (64, 0, 2 * BEAT), (67, BEAT + BEAT // 8, 2 * BEAT)]
    read = midi_to_roll(write_midi(tmp_path / "twice.mid", notes, extra_tracks=1), steps_per_beat=4)
    assert (read.reading.n_notes, read.reading.n_merged) == (8, 4)
    assert np.flatnonzero(read.onsets[:, 60 - 21]).tolist() == [0, 4]
    assert np.flatnonzero(read.roll[:, 60 - 21]).tolist() == list(range(8))
    # 67 starts half a step after step 4 (tick 540 of 120 per step): half a step rounds up, to 5
    assert roll_to_notes(read.roll, read.onsets) == [(60, 0, 4), (60, 4, 8), (64, 0, 8), (67, 5, 8)]
    assert read.reading.n_off_grid == 2
    assert not (read.onsets & ~read.roll).any()
    assert read.grid == Grid(4)  # no time signature in the file: 4/4 from the first step


def test_midi_to_roll_reads_the_metre_from_time_signatures_on_its_own_grid(tmp_path):
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=90)
    instrument = pretty_midi.Instrument(0)
    instrument.notes.append(pretty_midi.Note(80, 60, 0.0, 12.0))
    midi.instruments.append(instrument)
    seconds_per_beat = 60 / 90
    for numerator, denominator, beat in ((6, 8, 0), (2, 4, 6), (5, 8, 8)):
        midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, beat * seconds_per_beat))
    midi.write(str(tmp_path / "metre.mid"))
    read = midi_to_roll(tmp_path / "metre.mid", 2).grid
    assert read == Grid(2, 3, 0, ((12, 4), (16, 5)), ((6, 8), (2, 4), (5, 8)))  # 6/8 kept, not 3/4


def test_a_read_roll_without_onsets_takes_the_ones_its_roll_tells():
    roll = np.zeros((3, 88), dtype=bool)
    roll[:, 5] = True
    assert np.array_equal(Piece(roll).onsets, onsets_of(roll))


GRIDS = [
    Grid(4),
    Grid(4, 3, 2),
    Grid(4, 2, 4, ((12, 12), (24, 14))),
    Grid(4, 4, 0, ((0, 14),)),
    Grid(3, 2, 1, ((7, 4),)),
    Grid(2, 5, 3, ((13, 6),)),
]


@settings(max_examples=60, deadline=None)
@given(
    roll=arrays(bool, st.tuples(st.integers(24, 48), st.just(88)), elements=st.booleans()),
    strikes=arrays(bool, st.tuples(st.just(48), st.just(88)), elements=st.booleans()),
    grid=st.sampled_from(GRIDS),
    tempo_bpm=st.floats(30, 240),
)
def test_roll_to_midi_to_roll_keeps_struck_keys_and_the_metre(tmp_path_factory, roll, strikes, grid, tempo_bpm):
    path = tmp_path_factory.mktemp("struck") / "piece.mid"
    onsets = strikes[: len(roll)]
    roll_to_midi(roll, grid.steps_per_beat, tempo_bpm, onsets=onsets, grid=grid).write(str(path))
    back = midi_to_roll(path, grid.steps_per_beat)
    assert np.array_equal(back.roll, roll)
    assert np.array_equal(back.onsets, (roll & onsets) | onsets_of(roll))
    assert back.grid == grid and back.reading.n_merged == 0


def test_roll_to_midi_refuses_a_grid_of_other_steps_per_beat():
    with pytest.raises(MusicLSTMError, match="the grid has 2 steps per beat, the roll 4"):
        roll_to_midi(np.zeros((4, 88), dtype=bool), 4, grid=Grid(2))


def test_roll_to_midi_writes_a_roll_of_0_and_1_integers_as_the_same_roll_of_bools():
    roll = np.zeros((4, 88), dtype=bool)
    roll[:, 60 - 21] = True
    written = [roll_to_midi(as_given, 4) for as_given in (roll, roll.astype(np.int64), roll.astype(np.uint8))]
    notes = [
        [(note.pitch, note.start, note.end, note.velocity) for note in midi.instruments[0].notes] for midi in written
    ]
    assert notes == [[(60, 0.0, 0.5, 90)]] * 3


def test_roll_to_midi_takes_numpys_whole_numbers_for_program_and_velocity():
    roll = np.zeros((4, 88), dtype=bool)
    roll[1:3, 64 - 21] = True
    midi = roll_to_midi(roll, 4, program=np.int64(40), velocity=lambda step: np.int32(100 + step))
    assert midi.instruments[0].program == 40
    assert [(note.pitch, note.velocity) for note in midi.instruments[0].notes] == [(64, 101)]


@pytest.mark.parametrize(("numerator", "denominator", "steps_per_bar"), [(6, 8, 12), (12, 8, 24), (2, 2, 16)])
def test_a_files_time_signature_reads_and_writes_as_itself(numerator, denominator, steps_per_bar, tmp_path):
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    instrument = pretty_midi.Instrument(0)
    instrument.notes += [pretty_midi.Note(80, 60 + index, index * 0.5, index * 0.5 + 0.5) for index in range(12)]
    midi.instruments.append(instrument)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, 0.0))
    midi.write(str(tmp_path / "in.mid"))
    piece = midi_to_roll(tmp_path / "in.mid", 4)  # 12 beats: 24 steps of notes at 2 steps each
    assert piece.grid.steps_per_bar == steps_per_bar
    assert piece.grid.time_signatures(len(piece.roll)) == [(0, numerator, denominator)]
    roll_to_midi(piece.roll, 4, onsets=piece.onsets, grid=piece.grid).write(str(tmp_path / "out.mid"))
    written = [
        (message.numerator, message.denominator)
        for track in mido.MidiFile(tmp_path / "out.mid").tracks
        for message in track
        if message.type == "time_signature"
    ]
    assert written == [(numerator, denominator)]
    again = midi_to_roll(tmp_path / "out.mid", 4)
    assert again.grid == piece.grid
    assert np.array_equal(again.roll, piece.roll)


def test_a_pieces_phrase_ends_go_out_as_text_events_and_come_back(tmp_path):
    roll = np.zeros((40, 88), dtype=bool)
    roll[:, 60 - 21] = True
    grid = Grid(4, 3, 2, phrase_ends=((10, 14), (14, 16), (30, 44)))  # two touching, one past the roll's end
    piece_to_midi(Piece(roll, grid=grid)).write(str(tmp_path / "fermatas.mid"))
    messages = mido.merge_tracks(mido.MidiFile(tmp_path / "fermatas.mid").tracks)
    ticks = np.cumsum([message.time for message in messages]).tolist()
    texts = [
        (tick * 4 // WRITE_RESOLUTION, message.text)
        for tick, message in zip(ticks, messages, strict=True)
        if message.type == "text"
    ]
    assert texts == [
        (10, "fermata"),
        (14, "fermata end"),
        (14, "fermata"),
        (16, "fermata end"),
        (30, "fermata"),
        (40, "fermata end"),
        (40, "musiclstm:end"),
    ]
    back = midi_to_roll(tmp_path / "fermatas.mid", 4)
    assert back.grid == grid.with_phrase_ends(((10, 14), (14, 16), (30, 40)))
    roll_to_midi(roll, 4).write(str(tmp_path / "plain.mid"))
    assert midi_to_roll(tmp_path / "plain.mid", 4).grid == Grid(4)  # a file without them reads as before


def test_text_events_of_other_files_mark_phrase_ends_as_far_as_they_can():
    assert text_spans([(8, "Fermata"), (4, "fermata"), (6, " FERMATA END"), (9, "lyric")]) == ((4, 6), (8, 9))
    assert text_spans([(3, "fermata end"), (2, "fermata"), (5, "fermata"), (7, "fermata end")]) == ((2, 3), (5, 7))
    assert text_spans([(2, "fermata"), (2, "fermata end")]) == ((2, 3),)  # an end on its own step: one step
