"""Sheet music: MusicXML that reads back as the same notes, on a grand staff; PDF only where it can be made."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

import musiclstm.score
from musiclstm import MusicLSTMError
from musiclstm.cli import main
from musiclstm.render import write_midi
from musiclstm.roll import roll_to_notes
from musiclstm.score import engrave, engraver, write_score

STEPS_PER_BEAT = 4


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


def test_the_musicxml_reads_back_as_the_notes_of_the_midi(bach_corpus, tmp_path):
    roll = bach_corpus.split("test")[0].roll[:96].copy()
    roll[10:30, 70] = True  # a note across a bar line
    roll[40:44] = False  # a rest
    write_midi(roll, tmp_path / "piece.mid", STEPS_PER_BEAT, 90)
    write_score(roll, tmp_path / "piece.musicxml", STEPS_PER_BEAT, 90, "D major")
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "piece.mid"))
    seconds_per_step = 60 / 90 / STEPS_PER_BEAT
    from_midi = sorted(
        (note.pitch, round(note.start / seconds_per_step), round((note.end - note.start) / seconds_per_step))
        for note in midi.instruments[0].notes
    )
    from_roll = [(pitch, start, stop - start) for pitch, start, stop in roll_to_notes(roll)]
    assert score_notes(tmp_path / "piece.musicxml", STEPS_PER_BEAT) == from_midi == from_roll


def test_the_score_is_a_grand_staff_split_at_middle_c_in_four_four_with_key_and_tempo(tmp_path):
    from music21 import converter, key, meter, tempo

    roll = np.zeros((32, 88), dtype=bool)
    roll[0:16, [62 - 21, 66 - 21]] = True  # D4 and F#4 on the treble staff
    roll[0:32, 50 - 21] = True  # D3 on the bass staff
    write_score(roll, tmp_path / "d.musicxml", STEPS_PER_BEAT, 72, "D major")
    treble, bass = converter.parse(tmp_path / "d.musicxml").parts
    assert {p.midi for n in treble.recurse().notes for p in n.pitches} == {62, 66}
    assert {p.midi for n in bass.recurse().notes for p in n.pitches} == {50}
    assert treble.recurse().getElementsByClass(key.KeySignature).first().sharps == 2
    assert treble.recurse().getElementsByClass(meter.TimeSignature).first().ratioString == "4/4"
    assert treble.recurse().getElementsByClass(tempo.MetronomeMark).first().number == 72
    assert len(treble.recurse().getElementsByClass("Measure")) == 2
    assert len(treble.recurse().notesAndRests.getElementsByClass("Rest")) >= 1  # the treble's silent second bar


def test_without_a_key_music21_finds_one(tmp_path):
    from music21 import converter, key

    roll = np.zeros((16, 88), dtype=bool)
    for step, pitch in enumerate([64, 66, 68, 69, 71, 73, 75, 76]):  # E major scale
        roll[2 * step : 2 * step + 2, pitch - 21] = True
    write_score(roll, tmp_path / "e.musicxml", STEPS_PER_BEAT, 100)
    found = converter.parse(tmp_path / "e.musicxml").parts[0].recurse().getElementsByClass(key.KeySignature).first()
    assert found.sharps == 4


def test_score_pdf_is_refused_before_composing_where_no_engraver_is_installed(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(musiclstm.score.shutil, "which", lambda name: None)
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
