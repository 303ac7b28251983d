"""Reading MIDI as a pianist hears it: the sustain pedal, notes of no length, a key struck again before its
release, notes half a step off the grid, and every change or loss counted, said and recorded."""

from __future__ import annotations

import json
import logging
import os
import threading
from types import SimpleNamespace

import mido
import numpy as np
import pytest
from conftest import write_midi

from musiclstm import MusicLSTMError, build_corpus, format_summary, load_corpus
from musiclstm.cli import main
from musiclstm.composing.composer import read_music
from musiclstm.config import CorpusConfig
from musiclstm.music.piece import Reading
from musiclstm.music.roll import midi_to_roll

BEAT = 480  # ticks per quarter note; at 4 steps per beat a step is 120 ticks
C4, E4, G4 = 60, 64, 67


def write_events(path, events: list[tuple], ticks_per_beat: int = BEAT):
    """Write a one-track MIDI file of (tick, kind, number[, channel]) events, in the order given:
    kind "on"/"off" for a key (number: its pitch), "pedal" for the sustain pedal (number: its value)."""
    track, last = mido.MidiTrack(), 0
    for tick, kind, number, *channel in events:
        channel = channel[0] if channel else 0
        if kind == "pedal":
            message = mido.Message("control_change", control=64, value=number, channel=channel, time=tick - last)
        else:
            velocity = 80 if kind == "on" else 0
            message = mido.Message("note_on", note=number, velocity=velocity, channel=channel, time=tick - last)
        track.append(message)
        last = tick
    file = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    file.tracks.append(track)
    file.save(path)
    return path


def sounding(piece, pitch: int) -> list[int]:
    return np.flatnonzero(piece.roll[:, pitch - 21]).tolist()


def struck(piece, pitch: int) -> list[int]:
    return np.flatnonzero(piece.onsets[:, pitch - 21]).tolist()


@pytest.fixture
def pedalled(tmp_path):
    """C4 struck for half a beat, then E4 for half a beat, both under a pedal held down from 0 to beat 2."""
    events = [(0, "pedal", 127), (0, "on", C4), (240, "off", C4), (480, "on", E4), (720, "off", E4), (960, "pedal", 0)]
    return write_events(tmp_path / "pedalled.mid", events)


def test_a_pedalled_passage_keeps_its_sustained_notes_until_the_pedal_is_lifted(pedalled):
    read = midi_to_roll(pedalled, 4)
    assert sounding(read, C4) == list(range(8)) and sounding(read, E4) == [4, 5, 6, 7]
    assert (read.reading.n_notes, read.reading.n_pedal_held, read.reading.n_pedal_ignored) == (2, 2, 0)


def test_without_the_pedal_notes_end_at_their_release_and_are_counted(pedalled):
    read = midi_to_roll(pedalled, 4, pedal=False)
    assert sounding(read, C4) == [0, 1] and sounding(read, E4) == [4, 5]
    assert (read.reading.n_pedal_held, read.reading.n_pedal_ignored) == (0, 2)


def test_a_key_struck_again_under_the_pedal_ends_its_held_note_and_starts_a_new_one(tmp_path):
    events = [(0, "pedal", 64), (0, "on", C4), (120, "off", C4), (480, "on", C4), (600, "off", C4), (960, "pedal", 63)]
    read = midi_to_roll(write_events(tmp_path / "again.mid", events), 4)
    assert sounding(read, C4) == list(range(8)) and struck(read, C4) == [0, 4]
    assert read.notes() == [(C4, 0, 4), (C4, 4, 8)]
    assert read.reading.n_pedal_held == 2 and read.reading.n_overlapping == 0


def test_the_pedal_holds_only_notes_of_its_own_channel_and_a_pedal_never_lifted_holds_to_the_end(tmp_path):
    events = [(0, "pedal", 127, 1), (0, "on", C4), (240, "off", C4), (0, "on", G4, 1), (240, "off", G4, 1)]
    events += [(480, "on", E4, 1), (960, "off", E4, 1)]
    read = midi_to_roll(write_events(tmp_path / "channels.mid", sorted(events, key=lambda event: event[0])), 4)
    assert sounding(read, C4) == [0, 1]  # channel 0 has no pedal down
    assert sounding(read, G4) == list(range(8))  # held by channel 1's pedal to the file's last event
    assert read.reading.n_pedal_held == 1


def test_a_note_of_no_length_sounds_one_step(tmp_path):
    events = [(0, "on", C4), (480, "off", C4), (480, "on", E4), (480, "off", E4)]
    read = midi_to_roll(write_events(tmp_path / "zero.mid", events), 4)
    assert sounding(read, E4) == [4] and struck(read, E4) == [4]
    assert (read.reading.n_notes, read.reading.n_zero_length, read.reading.n_off_grid) == (2, 1, 0)


def test_a_key_struck_again_before_its_release_is_two_notes_the_first_ending_there(tmp_path):
    # pretty_midi ends both notes at the first release (0-720 and 480-720): the tail to 960 was lost
    events = [(0, "on", C4), (480, "on", C4), (720, "off", C4), (960, "off", C4)]
    read = midi_to_roll(write_events(tmp_path / "overlap.mid", events), 4)
    assert read.notes() == [(C4, 0, 4), (C4, 4, 8)]
    assert (read.reading.n_notes, read.reading.n_overlapping, read.reading.n_merged) == (2, 1, 0)


def test_a_release_at_the_tick_of_a_new_strike_ends_the_earlier_note(tmp_path):
    # a legato repeat written press-then-release at one tick: the release is the first note's (first in, first out)
    events = [(0, "on", C4), (480, "on", C4), (480, "off", C4), (960, "off", C4)]
    read = midi_to_roll(write_events(tmp_path / "legato.mid", events), 4)
    assert read.notes() == [(C4, 0, 4), (C4, 4, 8)]
    assert (read.reading.n_overlapping, read.reading.n_zero_length) == (0, 0)


def test_a_note_never_released_is_left_out_and_counted(tmp_path):
    events = [(0, "on", C4), (0, "on", E4), (480, "off", E4)]
    read = midi_to_roll(write_events(tmp_path / "open.mid", events), 4)
    assert not read.roll[:, C4 - 21].any() and sounding(read, E4) == [0, 1, 2, 3]
    assert (read.reading.n_notes, read.reading.n_unended) == (1, 1)


def test_notes_half_a_step_off_the_grid_round_up_each_to_its_own_step(tmp_path):
    # four thirty-seconds at steps 0.5, 1.5, 2.5 and 3.5 (half-to-even put them on 0, 2, 2, 4)
    notes = [(pitch, start, start + 60) for pitch, start in zip((C4, 62, E4, 65), (60, 180, 300, 420), strict=True)]
    read = midi_to_roll(write_midi(tmp_path / "thirty-seconds.mid", notes), 4)
    assert [struck(read, pitch) for pitch in (C4, 62, E4, 65)] == [[1], [2], [3], [4]]
    assert read.reading.n_off_grid == 4


def test_a_note_on_the_grid_counts_as_nothing_changed(tmp_path):
    read = midi_to_roll(write_midi(tmp_path / "plain.mid", [(C4, 0, 480), (E4, 480, 960)]), 4)
    assert read.reading == Reading(n_notes=2) and read.reading.in_words() == ""


def test_midi_to_roll_refuses_a_pedal_that_is_not_true_or_false(pedalled):
    with pytest.raises(MusicLSTMError, match="pedal must be True .* or False, got 'no'"):
        midi_to_roll(pedalled, 4, pedal="no")


def test_a_fifo_is_refused_by_name_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "primer.mid"
    os.mkfifo(fifo)

    def free_a_blocked_reader():  # were the file opened, this would end the wait (and the test would fail)
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    rescue = threading.Timer(5.0, free_a_blocked_reader)
    rescue.start()
    try:
        with pytest.raises(MusicLSTMError, match=r"primer.mid: a FIFO \(named pipe\), not a regular file"):
            midi_to_roll(fifo, 4)
    finally:
        rescue.cancel()
    with pytest.raises(MusicLSTMError, match=r": a folder, not a regular file; give a MIDI file"):
        midi_to_roll(tmp_path, 4)


def test_a_reading_in_words_names_each_kind_once_in_one_line_and_readings_add_up():
    total = Reading(n_notes=3, n_pedal_held=2, n_drum_notes=1) + Reading(n_notes=1, n_off_grid=1, n_pedal_held=1)
    assert total == Reading(n_notes=4, n_drum_notes=1, n_pedal_held=3, n_off_grid=1)
    assert total.in_words() == (
        "1 drum note is left out; 3 notes are held by the sustain pedal until it is lifted; "
        "1 note off the grid is moved to the nearest step"
    )
    assert total.changes()["pedal_held"] == 3 and total.changes()["zero_length"] == 0


def test_a_primer_warns_of_every_change_reading_made_in_one_line(pedalled, caplog):
    with caplog.at_level(logging.WARNING):
        read_music(pedalled, "pedalled.mid", SimpleNamespace(steps_per_beat=4), "start from")
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["pedalled.mid: 2 notes are held by the sustain pedal until it is lifted"]


def test_data_counts_each_change_in_the_manifest_and_one_line_and_no_pedal_reads_without_it(pedalled, tmp_path):
    out = tmp_path / "corpus"
    summary = build_corpus(CorpusConfig(str(pedalled.parent)), out)
    assert summary["read_changes"]["pedal_held"] == 2 and load_corpus(out).manifest["pedal"] is True
    assert "  changed on reading: 2 notes are held by the sustain pedal until it is lifted" in format_summary(summary)
    assert main(["data", "--source", str(pedalled.parent), "--out", str(out), "--no-pedal", "--json"]) == 0
    manifest = load_corpus(out).manifest
    assert manifest["pedal"] is False and manifest["read_changes"]["pedal_ignored"] == 2
    assert load_corpus(out)[0].roll[:, C4 - 21].sum() == 2


def test_a_corpus_built_before_the_changes_were_counted_still_loads_and_summarizes(pedalled, tmp_path):
    out = tmp_path / "corpus"
    build_corpus(CorpusConfig(str(pedalled.parent)), out)
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["read_changes"], manifest["pedal"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    from musiclstm.data.corpus import summarize

    summary = summarize(load_corpus(out), seconds=0.0, reused=True)
    assert summary["read_changes"] == {} and "changed on reading" not in format_summary(summary)


def test_a_harmonized_melodys_json_records_what_reading_it_changed(pedalled, tmp_path):
    from musiclstm import harmonize, save_pieces

    composition = harmonize(pedalled, seed=1)
    (entry,) = save_pieces(composition, tmp_path / "out", audio=False)
    recorded = json.loads((tmp_path / "out" / "piece_1.json").read_text())["settings"]["reading"]
    assert recorded["pedal_held"] == 2 and recorded == entry["settings"]["reading"]


def test_a_generated_pieces_json_records_what_reading_its_primer_changed(pedalled, tmp_path):
    from musiclstm import generate, save_pieces

    (entry,) = save_pieces(generate(None, pedalled, length=8, seed=1), tmp_path / "out", audio=False)
    assert entry["settings"]["reading"]["pedal_held"] == 2
    assert "reading" not in generate(None, length=8, seed=1).settings  # a held-out passage is not read from a file
