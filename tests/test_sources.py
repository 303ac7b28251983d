"""Where music comes from: the Bach chorales, benchmark files kept in their own split, pickles that cannot run code."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from musiclstm import CorpusConfig, MusicLSTMError, build_corpus, load_corpus
from musiclstm.data.sources import score_to_roll
from musiclstm.music.grid import Grid
from musiclstm.music.piece import onsets_of, roll_to_notes


def benchmark_data(scalar=int):
    return {
        "train": [[(scalar(60), scalar(64)), (), (scalar(67),)], [(scalar(48),)] * 5],
        "valid": [[(scalar(62),)] * 2],
        "test": [[(scalar(65), scalar(130))], [(scalar(2),)]],
    }


def test_benchmark_pickle_with_numpy_scalars_keeps_its_own_split(tmp_path):
    path = tmp_path / "JSB Chorales.pickle"
    path.write_bytes(pickle.dumps(benchmark_data(np.int64)))
    summary = build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    corpus = load_corpus(tmp_path / "corpus")
    assert [(piece.name, piece.split, piece.frames) for piece in corpus] == [
        ("train/0000", "train", 3),
        ("train/0001", "train", 5),
        ("valid/0000", "valid", 2),
        ("test/0000", "test", 1),
    ]
    assert corpus.steps_per_beat == 1
    assert [np.flatnonzero(step).tolist() for step in corpus[0].roll] == [[39, 43], [], [46]]
    assert summary["skipped"] == [
        {"name": "test/0001", "reason": "all 1 notes fall outside the 88 keys (MIDI 21..108)"}
    ]
    assert summary["notes_off_keyboard"] == 2


def test_a_benchmark_piece_repeats_a_key_as_one_held_note_in_4_4_from_its_first_step(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"train": [[[60], [60], [60, 64], []]]}))
    build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    (piece,) = load_corpus(tmp_path / "corpus")
    assert np.array_equal(piece.onsets, onsets_of(piece.roll)) and piece.onsets.sum() == 2
    assert piece.grid == Grid(1)


def test_benchmark_pickle_from_numpy_1_in_protocol_2_loads(tmp_path):
    blob = pickle.dumps(benchmark_data(np.int64), protocol=2)
    assert b"numpy._core.multiarray\nscalar" in blob
    path = tmp_path / "old.pkl"
    path.write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    assert [piece.frames for piece in load_corpus(tmp_path / "corpus")] == [3, 5, 2, 1]


def test_benchmark_json_reads_like_the_pickle(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(benchmark_data()))
    build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    assert [piece.split for piece in load_corpus(tmp_path / "corpus")] == ["train", "train", "valid", "test"]


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pickle_is_refused_and_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": [[[60]]], "valid": [], "test": [RunsCode(marker)]}))
    with pytest.raises(MusicLSTMError, match=r"evil.pkl: refused to load posix.system"):
        build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    assert not marker.exists()


def test_a_benchmark_file_of_the_wrong_shape_is_named(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(MusicLSTMError, match="list.json: not a benchmark file: expected a dict"):
        build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")


def test_the_bach_source_reads_real_chorales_in_four_voices(bach_corpus):
    assert len(bach_corpus) == 12 and bach_corpus.source == "bach" and bach_corpus.steps_per_beat == 4
    assert {piece.split for piece in bach_corpus} == {"train", "valid", "test"}
    for piece in bach_corpus:
        sounding = piece.roll.sum(axis=1)
        assert piece.frames > 64 and 3.0 <= sounding.mean() <= 5.5, piece.name
        assert all(end <= piece.frames for _, end in piece.grid.phrase_ends), piece.name
    unmarked = {piece.name for piece in bach_corpus if not piece.grid.phrase_ends}  # their files mark none
    assert unmarked == {"bwv1.6", "bwv112.5"}, [(piece.name, len(piece.grid.phrase_ends)) for piece in bach_corpus]


def test_a_chorale_keeps_every_note_music21_gives_after_merging_ties_and_its_pickup():
    import music21

    path = music21.corpus.getWork("bach/bwv66.6")
    notes = [
        (pitch.midi, round(float(element.offset) * 4))
        for element in music21.converter.parse(path).stripTies().flatten().notes
        for pitch in element.pitches
    ]
    read = score_to_roll(path, 4)
    assert read.reading.n_notes == len(notes) == 163
    assert read.reading.n_merged == len(notes) - len(set(notes)) == 9  # voices in unison, struck on one step
    assert [(pitch, start) for pitch, start, _ in roll_to_notes(read.roll, read.onsets)] == sorted(set(notes))
    assert read.grid.with_phrase_ends(()) == Grid(4, 4, bar_offset=4)  # a pickup of one beat, then 4/4


def test_a_score_with_a_pickup_and_a_change_of_time_signature_gives_its_grid_and_one_onset_per_tie(tmp_path):
    import music21

    part = music21.stream.Part()
    pickup = music21.stream.Measure(number=0)
    pickup.append([music21.meter.TimeSignature("3/4"), music21.note.Note("C4", quarterLength=1)])
    pickup.paddingLeft = 2.0
    part.append(pickup)
    for number in (1, 2):
        measure = music21.stream.Measure(number=number)
        measure.append([music21.note.Note("C4", quarterLength=2), music21.note.Note("E4", quarterLength=1)])
        part.append(measure)
    last = music21.stream.Measure(number=3)
    tied_from = music21.note.Note("E4", quarterLength=2)
    last.append([music21.meter.TimeSignature("2/4"), tied_from])
    part.append(last)
    part.measure(2).notes[-1].tie = music21.tie.Tie("start")
    tied_from.tie = music21.tie.Tie("stop")
    path = tmp_path / "score.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    read = score_to_roll(path, 2)
    assert read.grid == Grid(2, 3, bar_offset=2, changes=((14, 4),))
    assert roll_to_notes(read.roll, read.onsets) == [(60, 0, 2), (60, 2, 6), (60, 8, 12), (64, 6, 8), (64, 12, 18)]
    assert roll_to_notes(read.roll) == [(60, 0, 6), (60, 8, 12), (64, 6, 8), (64, 12, 18)]


def test_a_bar_a_chorale_notates_in_two_at_its_repeats_is_one_bar_of_the_grid():
    import music21

    # measures 4 and 8 are 3 beats, 4a and 8a the beat that completes them (paddingLeft 3)
    read = score_to_roll(music21.corpus.getWork("bach/bwv101.7"), 4)
    assert read.grid.with_phrase_ends(()) == Grid(4, 4, bar_offset=4)


def test_a_chorale_marks_its_phrase_ends_where_its_fermatas_stand():
    import music21

    path = music21.corpus.getWork("bach/bwv66.6")
    fermatas = [
        (float(element.offset), float(element.quarterLength))
        for element in music21.converter.parse(path).flatten().notes
        if any(isinstance(mark, music21.expressions.Fermata) for mark in element.expressions)
    ]
    assert len(fermatas) == 6  # this edition marks them in the soprano alone
    read = score_to_roll(path, 4)
    assert read.grid.phrase_ends == ((12, 16), (28, 32), (44, 48), (76, 80), (108, 116), (140, 144))
    assert read.grid.phrase_ends == tuple((round(start * 4), round((start + length) * 4)) for start, length in fermatas)


def test_fermatas_of_several_parts_join_and_one_over_the_end_of_a_tie_marks_its_own_steps(tmp_path):
    import music21

    def part(*notes):
        made = music21.stream.Part()
        for name, length, tie, has_fermata in notes:
            written = music21.note.Note(name, quarterLength=length)
            written.tie = music21.tie.Tie(tie) if tie else None
            if has_fermata:
                written.expressions.append(music21.expressions.Fermata())
            made.append(written)
        return made

    upper = part(("E4", 2, None, False), ("G4", 2, None, True), ("A4", 2, "start", False), ("A4", 2, "stop", True))
    lower = part(("C3", 3, None, False), ("D3", 1, None, True), ("F3", 4, None, False))
    path = tmp_path / "fermatas.musicxml"
    music21.stream.Score([upper, lower]).write("musicxml", fp=str(path))
    read = score_to_roll(path, 2)
    assert read.grid.phrase_ends == ((4, 8), (12, 16))  # beats 2-4 joined, and the tie's second half


def test_a_score_rounds_half_a_step_up_and_counts_the_notes_it_moves(tmp_path):
    import music21

    # thirty-seconds at 4 steps per beat: each starts half a step off the grid, at 0.5, 1.5, 2.5 and 3.5 steps
    part = music21.stream.Part([music21.note.Rest(quarterLength=0.125)])
    for name in ("C4", "D4", "E4", "F4"):
        part.append([music21.note.Note(name, quarterLength=0.125), music21.note.Rest(quarterLength=0.125)])
    path = tmp_path / "thirty-seconds.musicxml"
    music21.stream.Score([part]).write("musicxml", fp=str(path))
    read = score_to_roll(path, 4)
    assert [start for _, start, _ in roll_to_notes(read.roll, read.onsets)] == [1, 2, 3, 4]
    assert (read.reading.n_notes, read.reading.n_off_grid, read.reading.n_merged) == (4, 4, 0)


def test_a_folder_read_by_two_workers_applies_the_pedal_unless_told_not_to(tmp_path):
    import mido

    source = tmp_path / "midi"
    source.mkdir()
    for name in ("a.mid", "b.mid"):
        track = mido.MidiTrack(
            [
                mido.Message("control_change", control=64, value=127, time=0),
                mido.Message("note_on", note=60, velocity=80, time=0),
                mido.Message("note_on", note=60, velocity=0, time=240),
                mido.Message("control_change", control=64, value=0, time=720),
            ]
        )
        file = mido.MidiFile(type=0, ticks_per_beat=480)
        file.tracks.append(track)
        file.save(source / name)
    for pedal, frames_sounding in ((True, 8), (False, 2)):
        out = tmp_path / f"corpus-{pedal}"
        summary = build_corpus(CorpusConfig(str(source), workers=2, pedal=pedal), out)
        assert [int(piece.roll[:, 60 - 21].sum()) for piece in load_corpus(out)] == [frames_sounding] * 2
        assert summary["read_changes"]["pedal_held" if pedal else "pedal_ignored"] == 2


def test_a_corpus_setting_of_pedal_must_be_true_or_false():
    with pytest.raises(MusicLSTMError, match="pedal must be True .* or False, got 'no'"):
        CorpusConfig("bach", pedal="no")
