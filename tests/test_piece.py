"""The piece value: what it carries, how it cuts and moves, and what it refuses."""

from __future__ import annotations

from dataclasses import replace

import mido
import numpy as np
import pytest

from musiclstm import MusicLSTMError, Piece, midi_to_roll
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Reading

BEAT = 480  # ticks per quarter note in the files written here


def write_three_four_with_pickup(path):
    """A one-beat pickup in 3/4, two bars of 3/4, then 4/4; 120 bpm, then 60 bpm from the first 4/4 bar."""
    file = mido.MidiFile(type=0, ticks_per_beat=BEAT)
    track = mido.MidiTrack()
    events = [
        (0, mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0)),
        (0, mido.MetaMessage("set_tempo", tempo=500_000, time=0)),
        (BEAT, mido.MetaMessage("time_signature", numerator=3, denominator=4, time=0)),  # the first bar line
        (7 * BEAT, mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0)),
        (7 * BEAT, mido.MetaMessage("set_tempo", tempo=1_000_000, time=0)),
    ]
    for beat in range(11):  # a note on every beat: C4 up the scale, one beat each
        events.append((beat * BEAT, mido.Message("note_on", note=60 + beat, velocity=80, time=0)))
        events.append(((beat + 1) * BEAT, mido.Message("note_off", note=60 + beat, velocity=0, time=0)))
    events.append((0, mido.Message("note_on", note=9, velocity=80, time=0)))  # below A0: left out and counted
    events.append((BEAT, mido.Message("note_off", note=9, velocity=0, time=0)))
    now = 0
    for tick, message in sorted(events, key=lambda event: (event[0], event[1].type == "note_on")):
        track.append(message.copy(time=tick - now))
        now = tick
    file.tracks.append(track)
    file.save(path)
    return path


@pytest.fixture
def pickup_piece(tmp_path) -> Piece:
    return midi_to_roll(write_three_four_with_pickup(tmp_path / "pickup.mid"), 4)


def test_a_read_piece_carries_its_metre_tempo_map_name_and_what_was_left_out(pickup_piece, tmp_path):
    assert pickup_piece.n_steps == 44 and pickup_piece.steps_per_beat == 4
    assert pickup_piece.grid == Grid(4, 3, bar_offset=4, changes=((28, 16),))
    assert pickup_piece.tempos == ((0, 120.0), (28, 60.0))
    assert (pickup_piece.tempo_at(27), pickup_piece.tempo_at(28)) == (120.0, 60.0)
    assert pickup_piece.reading == Reading(n_notes=11, n_off_keyboard=1)
    assert pickup_piece.name == str(tmp_path / "pickup.mid")
    assert pickup_piece.seconds() == pytest.approx(7 * 0.5 + 4 * 1.0)


def test_bars_count_the_pickup_as_bar_one_and_follow_the_metre_change(pickup_piece):
    assert pickup_piece.bar_lines().tolist() == [0, 4, 16, 28, 44]
    assert pickup_piece.bar_span(1, 1) == (0, 4)
    assert pickup_piece.bar_span(3, 4) == (16, 44)
    with pytest.raises(MusicLSTMError, match=r"bars 4-5 are not within the piece's 4 bars \(1-4\)"):
        pickup_piece.bar_span(4, 5)


def test_a_cut_keeps_its_notes_metre_and_tempo_from_where_it_starts(pickup_piece):
    cut = pickup_piece.bars(3, 4)  # the last 3/4 bar, then the 4/4 bar
    assert cut.n_steps == 28 and cut.grid.bar_starts(cut.n_steps).tolist() == [0, 12, 28]
    assert cut.tempos == ((0, 120.0), (12, 60.0))
    assert [pitch for pitch, _, _ in cut.notes()] == list(range(64, 71))
    inside = pickup_piece.steps(30, 34)  # inside the 4/4 bar: a pickup of the next bar
    assert (inside.grid.bar_offset, inside.tempos, inside.notes()) == (14, ((0, 60.0),), [(67, 0, 2), (68, 2, 4)])
    with pytest.raises(MusicLSTMError, match="steps 40-50 are not within the piece's 44 steps"):
        pickup_piece.steps(40, 50)


def test_a_cut_keeps_the_phrase_ends_within_it_and_transposing_keeps_them_all(pickup_piece):
    marked = replace(pickup_piece, grid=pickup_piece.grid.with_phrase_ends(((0, 4), (12, 16), (26, 30))))
    assert marked.bars(3, 4).grid.phrase_ends == ((10, 14),)  # bars 3-4 are steps 16-44: the span at 26 only
    assert marked.steps(14, 28).grid.phrase_ends == ((0, 2), (12, 14))  # cut at both ends of the passage
    assert marked.steps(0, 12).grid.phrase_ends == ((0, 4),)
    assert marked.transposed(2).grid.phrase_ends == ((0, 4), (12, 16), (26, 30))
    assert marked != pickup_piece  # the phrase ends are part of the piece


def test_transposing_moves_sounding_and_struck_keys_and_drops_what_leaves_the_keyboard():
    roll = np.zeros((2, 88), dtype=bool)
    roll[:, [0, 40]] = True
    onsets = np.zeros_like(roll)
    onsets[:, 40] = True  # struck again at step 1
    piece = Piece(roll, onsets)
    down = piece.transposed(-1)
    assert np.flatnonzero(down.roll[0]).tolist() == [39] and np.flatnonzero(down.onsets[1]).tolist() == [39]
    assert np.flatnonzero(piece.transposed(47).roll[0]).tolist() == [47, 87]


def test_events_go_out_and_come_back_and_onsets_default_to_what_the_roll_tells():
    roll = np.zeros((3, 88), dtype=bool)
    roll[:, 39] = True
    piece = Piece(roll)
    assert np.flatnonzero(piece.onsets[:, 39]).tolist() == [0]
    assert piece.events.shape == (3, 176)
    assert Piece.from_events(piece.events, Grid(2)) == Piece(roll, grid=Grid(2))
    assert piece.top_line().tolist() == [39, 39, 39]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"roll": np.zeros((4, 87), dtype=bool)}, r"a roll must have shape \(steps, 88\), got \(4, 87\)"),
        ({"onsets": np.zeros((3, 88), dtype=bool)}, r"onsets must have the roll's shape \(4, 88\), got \(3, 88\)"),
        ({"tempos": ((4, 100.0),)}, r"a tempo map starts at step 0"),
    ],
)
def test_a_piece_refuses_parts_that_do_not_fit_by_name(fields, message):
    with pytest.raises(MusicLSTMError, match=message):
        Piece(**{"roll": np.zeros((4, 88), dtype=bool), **fields})


def test_a_piece_is_written_to_midi_at_its_first_tempo_brought_within_the_range(tmp_path):
    from musiclstm import piece_to_midi

    roll = np.zeros((8, 88), dtype=bool)
    roll[:4, 39] = True
    fast = Piece(roll, grid=Grid(4), tempos=((0, 500.0),))
    midi = piece_to_midi(fast)
    assert midi.get_tempo_changes()[1].tolist() == [400.0]
    midi.write(str(tmp_path / "fast.mid"))
    assert midi_to_roll(tmp_path / "fast.mid", 4) == Piece(
        roll, grid=Grid(4), tempos=((0, 400.0),), name=str(tmp_path / "fast.mid")
    )
