"""Sheet music: MusicXML that reads back as the same notes, on a grand staff; PDF only where it can be made."""

from __future__ import annotations

import gc
import sys

import numpy as np
import pretty_midi
import pytest

import musiclstm.music.score
from musiclstm import MusicLSTMError
from musiclstm.cli import main
from musiclstm.music.grid import Grid
from musiclstm.music.piece import roll_to_notes
from musiclstm.music.render import write_midi
from musiclstm.music.roll import midi_to_roll, roll_to_midi
from musiclstm.music.score import engrave, engraver, key_signature, write_score

STEPS_PER_BEAT = 4
GRID = Grid(STEPS_PER_BEAT)


def score_notes(path, steps_per_beat: int) -> list[tuple[int, int, int]]:
    """Every note of a MusicXML file as (MIDI pitch, first step, steps held), tied notes joined."""
    from music21 import converter

    notes = []
    for part in converter.parse(path).parts:
        tied_from = {}
        for element in part.recurse().notes:
            start = float(element.getOffsetInHierarchy(part))
            for member in element.notes if element.isChord else [element]:
                kind = member.tie.type if member.tie else None
                first = tied_from.pop(member.pitch.midi, start) if kind in ("stop", "continue") else start
                if kind in ("start", "continue"):
                    tied_from[member.pitch.midi] = first
                else:
                    end = start + float(element.quarterLength)
                    notes.append(
                        (member.pitch.midi, round(first * steps_per_beat), round((end - first) * steps_per_beat))
                    )
    return sorted(notes)


def test_the_musicxml_reads_back_as_the_notes_of_the_midi_struck_again_notes_apart(bach_corpus, tmp_path):
    piece = bach_corpus.split("test")[0]
    roll, onsets = piece.roll[:96].copy(), piece.onsets[:96].copy()
    roll[10:30, 70] = True  # a note across a bar line
    onsets[10, 70] = onsets[14, 70] = True  # and struck again in its first bar
    roll[40:44] = onsets[40:44] = False  # a rest
    onsets[44] |= roll[44]
    assert len(roll_to_notes(roll, onsets)) > len(roll_to_notes(roll))  # the chorale's own repeated notes too
    write_midi(roll, tmp_path / "piece.mid", STEPS_PER_BEAT, 90, onsets=onsets)
    write_score(roll, tmp_path / "piece.musicxml", GRID, 90, "D major", onsets=onsets)
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "piece.mid"))
    seconds_per_step = 60 / 90 / STEPS_PER_BEAT
    from_midi = sorted(
        (note.pitch, round(note.start / seconds_per_step), round((note.end - note.start) / seconds_per_step))
        for note in midi.instruments[0].notes
    )
    from_roll = [(pitch, start, stop - start) for pitch, start, stop in roll_to_notes(roll, onsets)]
    assert score_notes(tmp_path / "piece.musicxml", STEPS_PER_BEAT) == from_midi == from_roll


def test_the_score_is_a_grand_staff_split_at_middle_c_in_four_four_with_key_and_tempo(tmp_path):
    from music21 import converter, key, meter, tempo

    roll = np.zeros((32, 88), dtype=bool)
    roll[0:16, [62 - 21, 66 - 21]] = True  # D4 and F#4 on the treble staff
    roll[0:32, 50 - 21] = True  # D3 on the bass staff
    write_score(roll, tmp_path / "d.musicxml", GRID, 72, "D major")
    treble, bass = converter.parse(tmp_path / "d.musicxml").parts
    assert {p.midi for n in treble.recurse().notes for p in n.pitches} == {62, 66}
    assert {p.midi for n in bass.recurse().notes for p in n.pitches} == {50}
    assert treble.recurse().getElementsByClass(key.KeySignature).first().sharps == 2
    assert treble.recurse().getElementsByClass(meter.TimeSignature).first().ratioString == "4/4"
    assert treble.recurse().getElementsByClass(tempo.MetronomeMark).first().number == 72
    assert len(treble.recurse().getElementsByClass("Measure")) == 2
    plain = [(1, 0.0, 4.0, 0.0, ["4/4"]), (2, 4.0, 4.0, 0.0, [])]  # no pickup: measure 1 first, one signature
    assert measures(tmp_path / "d.musicxml") == [plain, plain]
    assert len(treble.recurse().notesAndRests.getElementsByClass("Rest")) >= 1  # the treble's silent second bar


def test_without_a_key_music21_finds_one(tmp_path):
    from music21 import converter, key

    roll = np.zeros((16, 88), dtype=bool)
    for step, pitch in enumerate([64, 66, 68, 69, 71, 73, 75, 76]):  # E major scale
        roll[2 * step : 2 * step + 2, pitch - 21] = True
    write_score(roll, tmp_path / "e.musicxml", GRID, 100)
    found = converter.parse(tmp_path / "e.musicxml").parts[0].recurse().getElementsByClass(key.KeySignature).first()
    assert found.sharps == 4


def python_calls(work) -> int:
    """How many Python functions `work()` calls, all the way down: a count of work that does not depend on the clock."""
    n_calls = 0

    def count(frame, event, arg):
        nonlocal n_calls
        n_calls += event == "call"

    sys.setprofile(count)
    try:
        work()
    finally:
        sys.setprofile(None)
    return n_calls


def test_every_further_bar_costs_the_same_work(tmp_path):
    bar = np.zeros((16, 88), dtype=bool)
    bar[0:6, [62 - 21, 66 - 21, 69 - 21]] = True  # a D major chord, then a line over a held bass
    for step, pitch in enumerate([74, 73, 71, 69, 67, 66, 64, 62, 61, 59]):
        bar[6 + step, pitch - 21] = True
    bar[0:15, 38 - 21] = True
    bar[4:7, 50 - 21] = True  # a tied dotted eighth, 3 steps

    def write(n_bars: int) -> int:
        roll = np.tile(bar, (n_bars, 1))
        return python_calls(lambda: write_score(roll, tmp_path / "s.musicxml", GRID, 90, "D major"))

    write(1)  # music21's first-use caches
    calls = [write(n_bars) for n_bars in (8, 16, 24)]
    # the previous writer built 8 more bars in 1,359,626 calls, then 8 more in 1,359,949: it searched the whole part
    assert calls[2] - calls[1] == calls[1] - calls[0]
    from_roll = [(pitch, start, stop - start) for pitch, start, stop in roll_to_notes(np.tile(bar, (24, 1)))]
    assert score_notes(tmp_path / "s.musicxml", STEPS_PER_BEAT) == sorted(from_roll)


def test_a_chord_of_all_88_keys_held_across_a_bar_line_reads_back_as_88_tied_notes(tmp_path):
    from music21 import converter

    roll = np.zeros((32, 88), dtype=bool)
    roll[8:24] = True  # beat 3 of bar 1 to beat 3 of bar 2: a half note tied to a half note
    one_key = np.zeros_like(roll)
    one_key[8:24, 60 - 21] = True

    def write(roll: np.ndarray) -> int:
        return python_calls(lambda: write_score(roll, tmp_path / "all.musicxml", GRID, 90, "C major"))

    write(roll)  # music21's first-use caches
    calls_per_further_key = (write(roll) - write(one_key)) / 87
    # about 300; the previous writer spelled a chord by trying out its enharmonics: 280,000
    assert calls_per_further_key < 1_000
    write(roll)
    assert score_notes(tmp_path / "all.musicxml", STEPS_PER_BEAT) == [(pitch, 8, 16) for pitch in range(21, 109)]
    treble, bass = converter.parse(tmp_path / "all.musicxml").parts
    for part, pitches in ((treble, list(range(60, 109))), (bass, list(range(21, 60)))):
        chords = list(part.recurse().getElementsByClass("Chord"))
        placed = [(c.measureNumber, float(c.offset), float(c.quarterLength)) for c in chords]
        assert placed == [(1, 2.0, 2.0), (2, 0.0, 2.0)]
        assert [p.midi for p in chords[0].pitches] == pitches  # lowest first
        assert {n.tie.type for n in chords[0].notes} == {"start"} and {n.tie.type for n in chords[1].notes} == {"stop"}


def test_a_triplet_grid_reads_back_as_the_notes_of_the_roll(tmp_path):
    roll = np.zeros((30, 88), dtype=bool)  # 3 steps per beat: 2.5 bars
    roll[0:2, 72 - 21] = True  # two triplet eighths
    roll[1:8, 67 - 21] = True  # across beats, tied
    roll[10:14, 48 - 21] = True  # across the bar line
    roll[20:30, [60 - 21, 64 - 21]] = True  # to the roll's end, in the unfinished last bar
    write_score(roll, tmp_path / "t.musicxml", Grid(3), 90, "C major")
    from_roll = [(pitch, start, stop - start) for pitch, start, stop in roll_to_notes(roll)]
    assert score_notes(tmp_path / "t.musicxml", 3) == sorted(from_roll)


def measures(path) -> list[list[tuple]]:
    """Each staff's measures as music21 reads them: (number, offset and length in quarters, paddingLeft, signatures)."""
    from music21 import converter, meter

    return [
        [
            (
                m.number,
                float(m.offset),
                float(m.quarterLength),
                float(m.paddingLeft),
                [signature.ratioString for signature in m.getElementsByClass(meter.TimeSignature)],
            )
            for m in part.getElementsByClass("Measure")
        ]
        for part in converter.parse(path).parts
    ]


def test_a_pickup_is_a_short_measure_0_and_a_change_of_metre_is_stated_where_it_begins(tmp_path):
    from music21 import converter, stream

    grid = Grid(STEPS_PER_BEAT, 3, bar_offset=4, changes=((28, 16),))  # 3/4 with a beat of pickup, 4/4 from step 28
    assert Grid.from_bar_lines(STEPS_PER_BEAT, [(0, 12), (4, 12), (28, 16)]) == grid  # as a MIDI file states it
    roll, onsets = np.zeros((56, 88), dtype=bool), np.zeros((56, 88), dtype=bool)
    roll[0:4, 67 - 21] = True  # G4: the pickup
    roll[2:6, 50 - 21] = True  # D3: across the pickup's bar line
    roll[4:16, 64 - 21] = onsets[4, 64 - 21] = onsets[12, 64 - 21] = True  # E4, struck again on beat 3
    roll[20:34, 72 - 21] = True  # C5: from 3/4 into 4/4
    roll[40:56, 48 - 21] = True  # C3: across a 4/4 bar line to the roll's end, inside the last bar
    write_score(roll, tmp_path / "pickup.musicxml", grid, 90, "C major", onsets=onsets)
    written = [
        (0, 0.0, 1.0, 2.0, ["3/4"]),
        (1, 1.0, 3.0, 0.0, []),
        (2, 4.0, 3.0, 0.0, []),
        (3, 7.0, 4.0, 0.0, ["4/4"]),
        (4, 11.0, 4.0, 0.0, []),
    ]
    assert measures(tmp_path / "pickup.musicxml") == [written, written]
    # (pitch, start, steps): at 4 steps per beat, the start in quarter notes from the pickup's first beat is start / 4
    notes = [(48, 40, 16), (50, 2, 4), (64, 4, 8), (64, 12, 4), (67, 0, 4), (72, 20, 14)]
    assert score_notes(tmp_path / "pickup.musicxml", STEPS_PER_BEAT) == notes
    assert sorted((pitch, start, stop - start) for pitch, start, stop in roll_to_notes(roll, onsets)) == notes
    treble, bass = (part.getElementsByClass("Measure") for part in converter.parse(tmp_path / "pickup.musicxml").parts)
    assert treble[0].showNumber == stream.enums.ShowNumber.NEVER  # MusicXML's implicit="yes"
    assert [(n.pitch.midi, float(n.offset), float(n.quarterLength)) for n in treble[0].notes] == [(67, 0.0, 1.0)]
    assert [(n.pitch.midi, float(n.offset), n.tie.type) for n in bass[0].notes] == [(50, 0.5, "start")]


@pytest.mark.parametrize(
    ("grid", "n_steps", "written"),
    [
        (Grid(STEPS_PER_BEAT, changes=((0, 14),)), 28, [(1, 0.0, 3.5, 0.0, ["7/8"]), (2, 3.5, 3.5, 0.0, [])]),
        (Grid(STEPS_PER_BEAT, changes=((0, 10),)), 20, [(1, 0.0, 2.5, 0.0, ["5/8"]), (2, 2.5, 2.5, 0.0, [])]),
        (
            Grid(STEPS_PER_BEAT, changes=((16, 6),)),  # 4/4, then 3/8
            28,
            [(1, 0.0, 4.0, 0.0, ["4/4"]), (2, 4.0, 1.5, 0.0, ["3/8"]), (3, 5.5, 1.5, 0.0, [])],
        ),
    ],
)
def test_bars_of_eighths_are_written_in_their_own_time_signature_with_all_their_notes(grid, n_steps, written, tmp_path):
    roll = np.zeros((n_steps, 88), dtype=bool)
    roll[0:3, 72 - 21] = True  # C5, a dotted eighth
    roll[3:17, 67 - 21] = True  # G4, across the first bar line
    roll[:, 48 - 21] = True  # C3, across every bar line
    roll[n_steps - 2 :, 74 - 21] = True  # D5, the last eighth
    write_score(roll, tmp_path / "eighths.musicxml", grid, 90, "C major")
    assert measures(tmp_path / "eighths.musicxml") == [written, written]
    notes = [(48, 0, n_steps), (67, 3, 14), (72, 0, 3), (74, n_steps - 2, 2)]
    assert score_notes(tmp_path / "eighths.musicxml", STEPS_PER_BEAT) == notes


def test_a_roll_that_ends_inside_its_pickup_is_one_short_measure(tmp_path):
    roll = np.zeros((2, 88), dtype=bool)
    roll[:, 67 - 21] = True
    write_score(roll, tmp_path / "short.musicxml", Grid(STEPS_PER_BEAT, 3, bar_offset=6), 90, "C major")
    assert measures(tmp_path / "short.musicxml") == [[(0, 0.0, 1.5, 1.5, ["3/4"])]] * 2
    assert score_notes(tmp_path / "short.musicxml", STEPS_PER_BEAT) == [(67, 0, 2)]


def signs(roll: np.ndarray, key: str, tmp_path) -> list[tuple[str, bool]]:
    """The treble's notes as written: (name with octave, whether an accidental sign is printed), tied pieces apart."""
    from music21 import converter

    write_score(roll, tmp_path / "k.musicxml", GRID, 90, key)
    notes = converter.parse(tmp_path / "k.musicxml").parts[0].recurse().notes
    members = [member for element in notes for member in (element.notes if element.isChord else [element])]
    return [(n.pitch.nameWithOctave, bool(n.pitch.accidental and n.pitch.accidental.displayStatus)) for n in members]


def line(pitches: list[int]) -> np.ndarray:
    roll = np.zeros((2 * len(pitches), 88), dtype=bool)
    for step, pitch in enumerate(pitches):
        roll[2 * step : 2 * step + 2, pitch - 21] = True
    return roll


def test_pitches_are_spelled_in_the_key_with_signs_only_where_needed(tmp_path):
    d_major = [(name, False) for name in "D4 E4 F#4 G4 A4 B4 C#5 D5".split()]
    assert signs(line([62, 64, 66, 67, 69, 71, 73, 74]), "D major", tmp_path) == d_major
    c_natural = [("C4", True), ("C#4", True), ("C4", True), ("D4", False)]
    assert signs(line([60, 61, 60, 62]), "D major", tmp_path) == c_natural
    assert signs(line([70, 69]), "F major", tmp_path) == [("B-4", False), ("A4", False)]
    assert signs(line([61, 62]), "D minor", tmp_path) == [("C#4", True), ("D4", False)]  # the raised seventh
    roll = np.zeros((32, 88), dtype=bool)
    roll[0:4, 62 - 21] = True
    roll[16:20, 64 - 21] = True  # bar 2: E4, tied where G4 comes in
    roll[18:22, 67 - 21] = True
    # the previous writer printed natural signs on that E4 and G4
    assert signs(roll, "D major", tmp_path) == [(name, False) for name in "D4 E4 E4 G4 G4".split()]


def test_without_a_key_the_analysis_is_music21s_of_the_written_notes(bach_corpus, tmp_path):
    from music21 import converter

    roll = bach_corpus.split("test")[0].roll[:128]
    write_score(roll, tmp_path / "b.musicxml", GRID, 90)
    found = converter.parse(tmp_path / "b.musicxml").analyze("key")
    assert key_signature(roll, None) == found


def test_a_silent_roll_without_a_key_is_written_in_c_major_as_rests(tmp_path):
    from music21 import converter, key

    for n_steps in (0, 20):
        write_score(np.zeros((n_steps, 88), dtype=bool), tmp_path / "silent.musicxml", GRID, 90)
        treble = converter.parse(tmp_path / "silent.musicxml").parts[0]
        assert treble.recurse().getElementsByClass(key.KeySignature).first().sharps == 0
        assert len(treble.recurse().notes) == 0
        assert len(treble.getElementsByClass("Measure")) == max(1, -(-n_steps // 16))


def test_progress_shows_a_bar_per_bar_written_and_is_quiet_by_default(tmp_path, capsys):
    roll = np.zeros((40, 88), dtype=bool)  # two bars and a half
    roll[:, 60 - 21] = True
    write_score(roll, tmp_path / "p.musicxml", GRID, 90, "C major")
    assert capsys.readouterr().err == ""
    write_score(roll, tmp_path / "p.musicxml", GRID, 90, "C major", progress=True)
    error = capsys.readouterr().err
    assert "3/3" in error and "bar" in error


def test_an_interrupted_score_leaves_the_old_file_whole_and_no_other(monkeypatch, tmp_path):
    path = tmp_path / "piece.musicxml"
    path.write_text("the old score")
    built = []

    def interrupted(*args):
        if len(built) == 3:
            raise KeyboardInterrupt
        built.append(args)
        return bar_measure(*args)

    bar_measure = musiclstm.music.score.bar_measure
    monkeypatch.setattr(musiclstm.music.score, "bar_measure", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_score(np.ones((64, 88), dtype=bool), path, GRID, 90, "C major")
    assert path.read_text() == "the old score"
    assert [file.name for file in tmp_path.iterdir()] == ["piece.musicxml"]
    assert gc.isenabled()  # the collector, paused while the score was built, runs again


def test_score_pdf_is_refused_before_composing_where_no_engraver_is_installed(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(musiclstm.music.score.shutil, "which", lambda name: None)
    assert engraver() is None
    assert main(["generate", "--out", str(tmp_path / "out"), "--score", "pdf", "--no-audio"]) == 2
    error = capsys.readouterr().err
    assert "--score pdf needs an engraver" in error and "apt-get install lilypond" in error
    assert not (tmp_path / "out").exists()
    with pytest.raises(MusicLSTMError, match="neither LilyPond nor MuseScore is installed"):
        engrave(tmp_path / "x.musicxml", tmp_path / "x.pdf")


def test_generate_with_score_writes_musicxml_beside_the_midi(tmp_path):
    assert main(["generate", "--out", str(tmp_path), "--length", "32", "--seed", "2", "--no-audio", "--score"]) == 0
    notes = score_notes(tmp_path / "piece_1.musicxml", STEPS_PER_BEAT)
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "piece_1.mid"))
    assert len(notes) == len(midi.instruments[0].notes) > 0


@pytest.mark.skipif(engraver() is None, reason="neither LilyPond nor MuseScore is installed")
def test_score_pdf_engraves_a_pdf(tmp_path):
    assert (
        main(["generate", "--out", str(tmp_path), "--length", "16", "--seed", "2", "--no-audio", "--score", "pdf"]) == 0
    )
    assert (tmp_path / "piece_1.pdf").read_bytes().startswith(b"%PDF")


def metred_file(path, signatures: list[tuple[int, int, float]], n_beats: int):
    """A MIDI file at 120 bpm in the (numerator, denominator, beat) `signatures` of many notes: a treble line of
    quarters, eighths and a note held across every second bar line, and a bass of dotted halves."""
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=120)
    instrument = pretty_midi.Instrument(0)
    for beat in range(n_beats):
        instrument.notes.append(pretty_midi.Note(80, 72 + beat % 7, beat * 0.5, beat * 0.5 + 0.25))
        instrument.notes.append(pretty_midi.Note(80, 60 + beat % 5, beat * 0.5 + 0.25, beat * 0.5 + 0.5))
        if beat % 3 == 0:
            instrument.notes.append(pretty_midi.Note(80, 43 + beat % 4, beat * 0.5, min(beat + 3, n_beats) * 0.5))
        if beat % 4 == 1:
            instrument.notes.append(pretty_midi.Note(80, 55, beat * 0.5, min(beat + 2.5, n_beats) * 0.5))
    midi.instruments.append(instrument)
    for numerator, denominator, beat in signatures:
        midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, beat * 0.5))
    midi.write(str(path))
    return midi_to_roll(path, STEPS_PER_BEAT)


@pytest.mark.parametrize(
    ("signatures", "n_beats", "first_measures"),
    [
        (
            [(1, 4, 0), (3, 4, 1)],
            37,
            [(1, 0.0, 1.0, 0.0, ["1/4"]), (2, 1.0, 3.0, 0.0, ["3/4"]), (3, 4.0, 3.0, 0.0, [])],
        ),
        (
            [(2, 4, 0), (4, 4, 2)],
            38,
            [(1, 0.0, 2.0, 0.0, ["2/4"]), (2, 2.0, 4.0, 0.0, ["4/4"]), (3, 6.0, 4.0, 0.0, [])],
        ),
        ([(6, 8, 0)], 36, [(1, 0.0, 3.0, 0.0, ["6/8"]), (2, 3.0, 3.0, 0.0, []), (3, 6.0, 3.0, 0.0, [])]),
        ([(12, 8, 0)], 36, [(1, 0.0, 6.0, 0.0, ["12/8"]), (2, 6.0, 6.0, 0.0, []), (3, 12.0, 6.0, 0.0, [])]),
    ],
)
def test_a_primer_in_its_own_metres_keeps_every_note_of_its_midi_in_the_score(
    signatures, n_beats, first_measures, tmp_path
):
    piece = metred_file(tmp_path / "primer.mid", signatures, n_beats)
    roll_to_midi(piece.roll, STEPS_PER_BEAT, onsets=piece.onsets, grid=piece.grid).write(str(tmp_path / "out.mid"))
    write_score(piece.roll, tmp_path / "primer.musicxml", piece.grid, 120, "C major", onsets=piece.onsets)
    from_midi = sorted(
        (note.pitch, round(note.start * 8), round((note.end - note.start) * 8))  # 8 steps a second at 120 bpm
        for note in pretty_midi.PrettyMIDI(str(tmp_path / "out.mid")).instruments[0].notes
    )
    assert len(from_midi) == len(roll_to_notes(piece.roll, piece.onsets)) > 90
    assert score_notes(tmp_path / "primer.musicxml", STEPS_PER_BEAT) == from_midi
    written = measures(tmp_path / "primer.musicxml")
    assert [staff[:3] for staff in written] == [first_measures, first_measures]
    assert sum(length for _, _, length, _, _ in written[0]) == n_beats  # the measures end where the notes do


def fermata_offsets(path) -> list[list[float]]:
    """Each part's offsets (in quarter notes from the first step) of what carries a fermata, in a written score."""
    import music21

    score = music21.converter.parse(str(path), forceSource=True)
    return [
        [
            float(element.offset)
            for element in part.flatten().notesAndRests
            if any(isinstance(mark, music21.expressions.Fermata) for mark in element.expressions)
        ]
        for part in score.parts
    ]


def test_a_chorales_fermatas_come_through_a_corpus_to_both_staves_of_its_score(tmp_path):
    import music21

    from musiclstm import load_corpus
    from musiclstm.data.corpus import write_corpus
    from musiclstm.data.sources import score_to_roll

    chorale = score_to_roll(music21.corpus.getWork("bach/bwv66.6"), 4)
    write_corpus(tmp_path / "corpus", [chorale], ["test"], {"steps_per_beat": 4})
    piece = load_corpus(tmp_path / "corpus")[0].piece
    write_score(piece.roll, tmp_path / "chorale.musicxml", piece.grid, 90, "F# minor", onsets=piece.onsets)
    beats = [3.0, 7.0, 11.0, 19.0, 27.0, 35.0]  # where the soprano's six fermatas stand
    assert fermata_offsets(tmp_path / "chorale.musicxml") == [beats, beats]


def test_a_fermata_inside_a_held_note_ties_the_note_there_to_carry_it(tmp_path):
    roll = np.zeros((16, 88), dtype=bool)
    roll[0:12, 72 - 21] = True  # C5 held three beats, a fermata on its third
    roll[0:16, 48 - 21] = True  # C3 held the whole bar
    grid = Grid(4, phrase_ends=((8, 12), (20, 24)))  # the second lies past the roll: not written
    write_score(roll, tmp_path / "held.musicxml", grid, 90, "C major")
    assert fermata_offsets(tmp_path / "held.musicxml") == [[2.0], [2.0]]
    assert score_notes(tmp_path / "held.musicxml", 4) == [(48, 0, 16), (72, 0, 12)]  # tied across the fermata
