"""MIDI <-> roll: the beat grid, what is left out, named errors, and the round-trip property."""

from __future__ import annotations

import mido
import numpy as np
import pytest
from conftest import TICKS_PER_BEAT, write_midi
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from musiclstm import MusicLSTMError
from musiclstm.roll import (
    MAX_ROLL_STEPS,
    WRITE_RESOLUTION,
    Grid,
    midi_to_roll,
    roll_to_midi,
    roll_to_notes,
    steps_to_roll,
)

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
    assert merged.n_notes == 2 and merged.roll.sum() == 4 and merged.roll[:, 60 - 21].all()
    read = midi_to_roll(drums, 4)
    assert (read.n_notes, read.n_drum_notes, int(read.roll.sum())) == (0, 1, 0)


def test_midi_to_roll_keeps_the_keyboard_edges_and_counts_what_falls_off(tmp_path):
    path = write_midi(tmp_path / "edges.mid", [(21, 0, BEAT), (108, 0, BEAT), (20, 0, BEAT), (109, 0, BEAT)])
    read = midi_to_roll(path, 1)
    assert read.roll[0].nonzero()[0].tolist() == [0, 87]
    assert (read.n_notes, read.n_off_keyboard) == (2, 2)


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
