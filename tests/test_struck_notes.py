"""Struck keys and the metre, end to end: a MIDI file -> `musiclstm data` -> corpus -> MIDI, every note
and bar line where it was; a chorale read by music21 keeps its notes and its pickup."""

from __future__ import annotations

import numpy as np
import pretty_midi

from musiclstm import CorpusConfig, build_corpus, load_corpus
from musiclstm.data.corpus import format_summary
from musiclstm.data.sources import score_to_roll
from musiclstm.music.grid import Grid
from musiclstm.music.piece import roll_to_notes
from musiclstm.music.roll import midi_to_roll, roll_to_midi

STEPS_PER_BEAT = 4
TEMPO_BPM = 100.0

# (pitch, start beat, end beat): a pickup of one beat, two bars of 4/4 (beats 1-9), two of 3/4 (beats 9-15)
NOTES = [
    *[(60, beat, beat + 1) for beat in (0, 1, 2)],  # one key struck three times without a gap
    *[(pitch, beat, beat + 1) for pitch in (64, 67) for beat in (3, 4, 5)],  # a chord struck again across a bar line
    (48, 1, 9),  # held through the first bar line of 4/4 to the change
    *[(62, beat, beat + 0.5) for beat in (9, 9.5, 10, 10.5)],  # repeated eighths in 3/4
    *[(pitch, beat, beat + 1) for pitch in (65, 69) for beat in (11, 12, 13)],  # across the bar line at beat 12
    (41, 9, 15),
]
SIGNATURES = [(4, 4, 0), (4, 4, 1), (3, 4, 9)]  # the first bar cut short at beat 1: a pickup


def write_source(path) -> None:
    midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=TEMPO_BPM)
    instrument = pretty_midi.Instrument(program=0)
    seconds = 60.0 / TEMPO_BPM
    for pitch, start, end in NOTES:
        instrument.notes.append(pretty_midi.Note(90, pitch, start * seconds, end * seconds))
    midi.instruments.append(instrument)
    for numerator, denominator, beat in SIGNATURES:
        midi.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, beat * seconds))
    midi.write(str(path))


def notes_on_the_grid(midi: pretty_midi.PrettyMIDI) -> list[tuple[int, int, int]]:
    def step(seconds: float) -> int:
        return round(midi.time_to_tick(seconds) * STEPS_PER_BEAT / midi.resolution)

    return sorted((note.pitch, step(note.start), step(note.end)) for inst in midi.instruments for note in inst.notes)


def test_repeated_notes_chords_and_a_change_of_metre_after_a_pickup_come_back_from_a_corpus(tmp_path):
    (tmp_path / "midi").mkdir()
    write_source(tmp_path / "midi" / "repeats.mid")
    summary = build_corpus(CorpusConfig(str(tmp_path / "midi"), steps_per_beat=STEPS_PER_BEAT), tmp_path / "corpus")
    (piece,) = load_corpus(tmp_path / "corpus")
    expected = sorted(
        (pitch, round(start * STEPS_PER_BEAT), round(end * STEPS_PER_BEAT)) for pitch, start, end in NOTES
    )
    assert summary["notes_kept"] == len(NOTES) == 21 and summary["notes_merged"] == 0
    assert "  notes merged on the grid: 0 (two notes of one key starting in one step)" in format_summary(summary)

    assert piece.grid == Grid(STEPS_PER_BEAT, 4, bar_offset=4, changes=((36, 12),))
    assert piece.grid.bar_starts(piece.frames).tolist() == [4, 20, 36, 48, 60]
    assert roll_to_notes(piece.roll, piece.onsets) == expected
    assert len(roll_to_notes(piece.roll)) == 8  # without struck keys the repeats would merge

    out = tmp_path / "back.mid"
    roll_to_midi(piece.roll, STEPS_PER_BEAT, TEMPO_BPM, onsets=piece.onsets, grid=piece.grid).write(str(out))
    back = pretty_midi.PrettyMIDI(str(out))
    assert notes_on_the_grid(back) == expected
    signatures = [
        (round(back.time_to_tick(sig.time) * STEPS_PER_BEAT / back.resolution), sig.numerator, sig.denominator)
        for sig in back.time_signature_changes
    ]
    assert signatures == [(0, 4, 4), (4, 4, 4), (36, 3, 4)]
    assert midi_to_roll(out, STEPS_PER_BEAT).grid == piece.grid


def test_a_chorale_keeps_its_notes_after_ties_are_merged_and_starts_with_its_pickup():
    import music21

    path = music21.corpus.getWork("bach/bwv66.6")
    score = music21.converter.parse(path)
    struck = {
        (pitch.midi, round(float(element.offset) * STEPS_PER_BEAT))
        for element in score.stripTies().flatten().notes
        for pitch in element.pitches
    }
    read = score_to_roll(path, STEPS_PER_BEAT)
    notes = roll_to_notes(read.roll, read.onsets)
    assert {(pitch, start) for pitch, start, _ in notes} == struck and len(
        notes
    ) == read.reading.n_notes - read.reading.n_merged
    assert len(notes) > len(roll_to_notes(read.roll))  # notes struck again that the roll alone would merge
    pickup_beats = float(score.parts[0].getElementsByClass("Measure")[0].quarterLength)
    assert pickup_beats == 1.0
    assert read.grid.with_phrase_ends(()) == Grid(STEPS_PER_BEAT, 4, bar_offset=round(pickup_beats * STEPS_PER_BEAT))
    assert np.array_equal(read.onsets & ~read.roll, np.zeros_like(read.roll))
