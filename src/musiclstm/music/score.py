"""Write a roll as sheet music: MusicXML through music21, and a PDF where LilyPond or MuseScore is installed.

The score is a piano grand staff split at middle C (C4 and above on the treble staff) in the grid's
metre, with the piece's key signature (the key it was composed in, else the one music21's key
analysis finds) and its tempo. A pickup is a short first measure, numbered 0 with its missing beats
as `paddingLeft` (as music21 reads an anacrusis); each metre section states its time signature at
its first measure (as the grid holds it: 6/8 as read from a file; else `signature_of` its steps,
7/8 for a bar of 14 steps at 4 per beat), and every bar is its
section's length. Each run of a key is one note, and a key struck again while it sounds starts
another; a note is tied where it crosses a bar line or where another note of its staff starts or
stops; silence is written as rests, and hidden rests fill an unfinished last bar. A phrase end of the
grid (`Grid.phrase_ends`) is a fermata over the notes, chords or rests of both staves at its first step
(a note held into it is tied there, so one starts there to carry it). Pitches are
spelled in the key (F# in D major, B- in F major). Each bar is built and notated on its own, so the
work grows with the roll's length and no faster. `--score pdf` engraves the MusicXML with LilyPond
(musicxml2ly, then lilypond) or MuseScore.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import gc
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from musiclstm.config import (
    ACCIDENTALS,
    KEY_NAMES,
    LOWEST_PITCH,
    SCALES,
    SCORE_KINDS,
    MusicLSTMError,
    check_tempo,
    key_root,
)
from musiclstm.files import write_bytes_atomically
from musiclstm.music.grid import Grid, as_grid
from musiclstm.music.metrics import pitch_class_counts
from musiclstm.music.roll import checked_roll

MIDDLE_C = 60
MUSESCORE_COMMANDS = ("mscore", "musescore", "mscore4portable", "musescore4", "mscore3")
ENGRAVE_SECONDS = 300
SHARP_NAMES = "C C# D D# E F F# G G# A A# B"  # pitch classes 0..11 outside the key, in a sharp key
FLAT_NAMES = "C D- D E- E F G- G A- A B- B"
PLAIN_NAMES = "C C# D E- E F F# G G# A B- B"  # music21's own, for C major and A minor
STEP_PITCH_CLASS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def engraver() -> list[str] | None:
    """The command that turns MusicXML into PDF on this machine: LilyPond's pair, or MuseScore; None if neither."""
    if shutil.which("musicxml2ly") and shutil.which("lilypond"):
        return ["lilypond"]
    musescore = next((shutil.which(name) for name in MUSESCORE_COMMANDS if shutil.which(name)), None)
    return [musescore] if musescore else None


def check_score_kind(kind: str | None) -> None:
    """Refuse, before any composing, a kind of score that is unknown or cannot be made here."""
    if kind is None:
        return
    if kind not in SCORE_KINDS:
        raise MusicLSTMError(f"unknown kind of score '{kind}': choose one of {', '.join(SCORE_KINDS)}")
    if kind == "pdf" and engraver() is None:
        raise MusicLSTMError(
            "--score pdf needs an engraver, and neither LilyPond nor MuseScore is installed: install one "
            "(Debian/Ubuntu: apt-get install lilypond; macOS: brew install lilypond), or use --score for MusicXML"
        )


def check_score_key(key: object) -> str | None:
    """A score's `key` as music21 spells it ("e♭ major" as "E- major"): None, or a root (`config.key_root`'s:
    a letter A-G with an optional sharp or flat) and one of SCALES, a space between; anything else refused.

    Raises:
        MusicLSTMError: `key` is not None nor such a string, naming the roots and scales it takes.
    """
    if key is None:
        return None
    root, _, scale = key.partition(" ") if isinstance(key, str) else ("", "", "")
    takes = f"a root ({', '.join(KEY_NAMES)}; # or b) and a scale ({', '.join(SCALES)}), like 'D major', or None"
    if scale not in SCALES:
        raise MusicLSTMError(f"unknown key {key!r} for the score: give {takes}")
    try:
        key_root(root)
    except MusicLSTMError:
        raise MusicLSTMError(f"unknown key {key!r} for the score: give {takes}") from None
    sign = {1: "#", -1: "-", 0: ""}[ACCIDENTALS[root[1:]]]
    return f"{root[0].upper()}{sign} {scale}"


def key_signature(roll: np.ndarray, key: str | None):
    """The key to write: `key` ("D major", "B minor") if it names one, else music21's key analysis of the roll.

    The analysis (Krumhansl-Schmuckler, as `Stream.analyze("key")`) weighs each pitch class by how long
    it sounds, so it runs on twelve stand-in notes of the roll's pitch-class durations: the same key,
    whatever the roll's length. A silent roll has no key to find: C major.
    """
    from music21 import key as keys
    from music21 import note, stream

    root, _, mode = (key or "").partition(" ")
    if mode in ("major", "minor"):
        return keys.Key(root, mode)
    steps_per_pitch_class = pitch_class_counts(roll)
    if not steps_per_pitch_class.any():
        return keys.Key("C", "major")
    stand_ins = stream.Stream()
    for pitch_class in np.flatnonzero(steps_per_pitch_class):
        stand_ins.append(
            note.Note(int(pitch_class) + MIDDLE_C, quarterLength=float(steps_per_pitch_class[pitch_class]))
        )
    found = stand_ins.analyze("key")
    return keys.Key(found.tonic.name, found.mode)


def key_spellings(signature) -> list[tuple[str, int]]:
    """(letter, alteration in semitones) for each pitch class 0..11 in the key.

    The key's scale is spelled as the key spells it (F# in D major, B- in F major), and a minor key's
    raised seventh (C# in D minor); the other pitch classes take sharps in sharp keys, flats in flat
    keys, and music21's usual names (C#, E-, F#, G#, B-) in C major and A minor.
    """
    names = SHARP_NAMES if signature.sharps > 0 else FLAT_NAMES if signature.sharps < 0 else PLAIN_NAMES
    spellings = [(name[0], {"": 0, "#": 1, "-": -1}[name[1:]]) for name in names.split()]
    in_key = list(signature.getScale().pitches[:7])
    if signature.mode == "minor":
        in_key.append(signature.pitchFromDegree(7).transpose("A1"))
    for spelled in in_key:
        spellings[spelled.pitchClass] = (spelled.step, int(spelled.alter))
    return spellings


@functools.cache
def sorted_chord_class() -> type:
    """A music21 Chord whose notes are given lowest first, as this module builds every chord.

    music21's MusicXML writer sorts each chord by deep-copying it and then drops the copy
    (`m21ToXml.chordToXml`); that copy was half of writing a score. This chord sorts itself in place.
    """
    from music21 import chord

    class SortedChord(chord.Chord):
        def sortAscending(self, *, inPlace: bool = False):
            self.sortDiatonicAscending(inPlace=True)
            return None if inPlace else self

    return SortedChord


def tie_type(begins: bool, ends: bool) -> str | None:
    """How a piece of a held note is tied: not at all if it is the whole note, else start, stop or continue."""
    if begins and ends:
        return None
    return "start" if begins else "stop" if ends else "continue"


def note_values(quarter_length: Fraction) -> list:
    """A length as written note values: one Duration, or the tied pieces of a length no single value has.

    The pieces are music21's own (as `splitAtDurations` cuts them): 1.25 quarters is a quarter and a 16th.
    """
    from music21 import duration
    from music21.common.numberTools import opFrac

    whole = duration.Duration(quarter_length)
    if whole.type != "complex":
        return [whole]
    multiplier = whole.aggregateTupletMultiplier()
    return [duration.Duration(opFrac(piece.quarterLength * multiplier)) for piece in whole.components]


def spelled_note(midi: int, spellings: list[tuple[str, int]], tie_kind: str | None):
    """A music21 Note of a MIDI pitch as the key spells it, tied as `tie_kind` says (None: not tied).

    A natural carries no Accidental object, so music21 writes a natural sign only where the key or
    the bar calls for one (an explicit natural would be signed wherever music21 doubts it).
    """
    from music21 import note, pitch, tie

    letter, alter = spellings[midi % 12]
    octave = (midi - STEP_PITCH_CLASS[letter] - alter) // 12 - 1
    member = note.Note(pitch.Pitch(step=letter, octave=octave, accidental=alter or None))
    if tie_kind:
        member.tie = tie.Tie(tie_kind)
    return member


def bar_measure(
    staff: np.ndarray,
    again: np.ndarray,
    cuts: np.ndarray,
    grid: Grid,
    spellings: list,
    number: int,
    fermatas: frozenset[int] = frozenset(),
):
    """One bar of a staff as a music21 Measure of notes, chords and rests, tied to its neighbours.

    `staff` is the staff's whole roll (steps, 88) and `again` its keys struck again while sounding;
    `cuts` are the steps of this bar where the notes sounding change or one is struck again, its
    first and last step included (the last may lie past the roll: the rest of an unfinished last
    bar is a hidden rest, as music21 fills it). What starts at a step of `fermatas` carries a fermata.
    """
    from music21 import expressions, note, stream

    measure = stream.Measure(number=number)
    n_steps = len(staff)
    for begin, end in zip(cuts[:-1], cuts[1:], strict=True):
        key_indices = np.flatnonzero(staff[begin]) if begin < n_steps else np.array([], dtype=int)
        begins = [begin == 0 or not staff[begin - 1, k] or again[begin, k] for k in key_indices]
        ends = [end >= n_steps or not staff[end, k] or again[end, k] for k in key_indices]
        pieces = note_values(Fraction(int(end - begin), grid.steps_per_beat))
        for index, value in enumerate(pieces):
            if len(key_indices) == 0:
                element = note.Rest(duration=value)
                element.style.hideObjectOnPrint = bool(begin >= n_steps)
            else:
                is_first, is_last = index == 0, index == len(pieces) - 1
                notes = [
                    spelled_note(int(k) + LOWEST_PITCH, spellings, tie_type(b and is_first, e and is_last))
                    for k, b, e in zip(key_indices, begins, ends, strict=True)
                ]
                element = notes[0] if len(notes) == 1 else sorted_chord_class()(notes)
                element.duration = value
            if index == 0 and begin in fermatas and begin < n_steps:
                element.expressions.append(expressions.Fermata())
            measure.coreAppend(element)
    measure.coreElementsChanged()
    return measure


def measure_lines(grid: Grid, n_steps: int) -> np.ndarray:
    """The steps that bound the score's measures, the first 0 and the last where the last bar would end.

    A pickup is a measure from 0 to `bar_offset`; after it each bar runs to the next bar line of the
    grid, and the last to its full length, past the roll's end if the roll stops inside it. A roll of
    no steps is one bar. Returns `grid.n_bars(n_steps) + 1` steps, increasing.
    """
    lines = grid.bar_starts(n_steps)
    starts = lines[lines < n_steps]
    if grid.bar_offset or len(starts) == 0:
        starts = np.concatenate([[0], starts[starts > 0]])
    place, length = (int(value) for value in grid.place_in_bar(np.array(starts[-1])))
    return np.append(starts, starts[-1] + length - place).astype(np.int64)


def staff_cuts(staff: np.ndarray, again: np.ndarray, lines: np.ndarray, marks: Iterable[int] = ()) -> list[np.ndarray]:
    """For each measure between `lines` (`measure_lines`), the steps where the staff's sounding notes change,
    one is struck again (`again`), the roll ends or a mark stands (`marks`: a fermata's first step), and its
    two bar lines."""
    changes = np.flatnonzero((staff[1:] != staff[:-1]).any(axis=1) | again[1:].any(axis=1)) + 1
    cuts = np.union1d(np.append(changes, len(staff)), np.union1d(lines, np.fromiter(marks, dtype=np.int64)))
    bounds = np.searchsorted(cuts, lines)
    return [cuts[bounds[bar] : bounds[bar + 1] + 1] for bar in range(len(lines) - 1)]


def time_signature(signature: tuple[int, int]):
    """A music21 TimeSignature of a (numerator, denominator) pair (`Grid.signatures_at`)."""
    from music21 import meter

    numerator, denominator = signature
    return meter.TimeSignature(f"{numerator}/{denominator}")


def roll_score(
    roll: np.ndarray,
    grid: Grid,
    tempo_bpm: float,
    key: str | None = None,
    title: str = "",
    bars: tqdm | None = None,
    onsets: np.ndarray | None = None,
):
    """The roll as a music21 Score: a piano grand staff split at middle C, the grid's metre, key signature and tempo.

    `onsets` (steps, 88) are the keys struck: one struck while it sounds starts a new note (None: each
    held run of a key is one note). `key` is "D major", "B minor", ... (None or another scale:
    music21's key analysis chooses). Each of the grid's phrase ends within the roll is a fermata over
    what both staves write at its first step.
    Each bar of each staff is built and notated on its own, so the work grows with the roll's length
    and no faster. `bars`, a tqdm bar, is advanced once per bar built.
    """
    from music21 import bar, clef, layout, metadata, stream, tempo

    roll = np.asarray(roll, dtype=bool)
    again = np.zeros_like(roll)
    if onsets is not None:
        again[1:] = np.asarray(onsets, dtype=bool)[1:] & roll[1:] & roll[:-1]
    split = MIDDLE_C - LOWEST_PITCH
    upper, lower = roll.copy(), roll.copy()
    upper[:, :split], lower[:, split:] = False, False
    signature = key_signature(roll, key)
    spellings = key_spellings(signature)
    lines = measure_lines(grid, len(roll))
    places = grid.place_in_bar(lines[:-1])[0].tolist()
    signatures = grid.signatures_at(lines[:-1])
    staves = [(upper, clef.TrebleClef, stream.Part()), (lower, clef.BassClef, stream.Part())]
    fermatas = frozenset(first for first, _ in grid.cropped(len(roll)).phrase_ends)
    cuts = [staff_cuts(staff, again, lines, fermatas) for staff, _, _ in staves]
    contexts = [[staff_clef(), None] for _, staff_clef, _ in staves]
    previous = [None, None]
    first_number = 0 if grid.bar_offset else 1
    for bar_index, written in enumerate(signatures):
        is_new_metre = bar_index == 0 or written != signatures[bar_index - 1]
        for index, (staff, staff_clef, part) in enumerate(staves):
            if is_new_metre:
                contexts[index][1] = time_signature(written)
            measure = bar_measure(
                staff, again, cuts[index][bar_index], grid, spellings, first_number + bar_index, fermatas
            )
            if places[bar_index]:  # the pickup: the end of a bar, its missing beats padded on the left
                measure.paddingLeft = Fraction(places[bar_index], grid.steps_per_beat)
                measure.showNumber = stream.enums.ShowNumber.NEVER  # MusicXML's implicit="yes": not counted
            notate_bar(measure, contexts[index], signature, previous[index])
            header = [time_signature(written)] if is_new_metre else []
            if bar_index == 0:
                header = [staff_clef(), copy.deepcopy(signature), *header]
                header += [tempo.MetronomeMark(number=tempo_bpm)] if staff is upper else []
            for element in header:
                measure.insert(0, element)
            part.coreAppend(measure)
            previous[index] = measure
        if bars is not None:
            bars.update()
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or "musiclstm", composer="musiclstm")
    parts = [part for _, _, part in staves]
    for part, last in zip(parts, previous, strict=True):
        part.coreElementsChanged()
        last.rightBarline = bar.Barline("final")
        score.insert(0, part)
    score.insert(0, layout.StaffGroup(parts, symbol="brace", barTogether=True))
    return score


def notate_bar(measure, context: list, signature, previous) -> None:
    """Notate one bar as music21's makeNotation does: accidentals, whole tuplets, beams, stems, tuplet brackets.

    music21 looks up a bar's clef, time signature and key by searching back through the part,
    which costs the square of the part's length; here the bar holds `context` (its clef and time
    signature) while it is notated, is given the key and the bar before it, and nothing is searched.
    """
    from music21 import note
    from music21.stream import makeNotation

    for element in context:
        measure.insert(0, element)
    last_note = previous[note.NotRest].last() if previous is not None else None
    measure.makeAccidentals(
        pitchPastMeasure=previous.pitches if previous is not None else None,
        useKeySignature=signature,
        searchKeySignatureByContext=False,
        tiePitchSet=makeNotation.getTiePitchSet(last_note) if last_note is not None else None,
        inPlace=True,
    )
    makeNotation.splitElementsToCompleteTuplets(measure, recurse=True, addTies=True)
    makeNotation.consolidateCompletedTuplets(measure, recurse=True, onlyIfTied=True)
    makeNotation.makeBeams(measure, inPlace=True)
    makeNotation.makeTupletBrackets(measure, inPlace=True)
    for element in context:
        measure.remove(element)


@contextlib.contextmanager
def collector_paused():
    """Pause Python's cyclic garbage collector for a while, and restore it.

    A score is a web of music21 objects that point at each other (a note knows its measure, the
    measure its notes); while one is built and written, the collector's passes walk all of it and
    free nothing, and cost a third of the time.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def write_score(
    roll: np.ndarray,
    path: str | Path,
    grid: Grid | int,
    tempo_bpm: float,
    key: str | None = None,
    title: str = "",
    progress: bool = False,
    onsets: np.ndarray | None = None,
) -> Path:
    """Write the roll's score as MusicXML to `path`, atomically: interrupted, it leaves the file as it was.

    `grid` is the roll's Grid, whose pickup, bar lengths and changes of metre the measures follow
    (whole-number steps per beat: that grid in 4/4); `onsets` the keys struck (a key struck while it
    sounds starts a new note; None: each held run is one note).

    The work grows with the roll's length: about 0.4 s per 1,000 steps of four-voice music at 4
    steps per beat (a 100,000-step piece: 42 s and 2.3 GB of memory). `progress` shows a tqdm bar
    per bar built, then while the file is written. `key` is "D major", "B minor", ... (`check_score_key`;
    another scale than major or minor, or None: music21's key analysis chooses).

    Raises:
        MusicLSTMError: before any work, by name: a roll or onsets that are not (steps, 88) bool or 0/1
            integers, a tempo outside TEMPO_RANGE_BPM, or a key that is not a root and a scale.
    """
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    roll = checked_roll("roll", roll)
    onsets = None if onsets is None else checked_roll("onsets", onsets, len(roll))
    tempo_bpm = check_tempo(tempo_bpm)
    key = check_score_key(key)
    grid = as_grid(grid)
    n_bars = grid.n_bars(len(roll))
    with collector_paused(), tqdm(total=n_bars, desc="score", unit="bar", disable=not progress) as bars:
        exporter = GeneralObjectExporter(roll_score(roll, grid, tempo_bpm, key, title, bars, onsets))
        exporter.makeNotation = False  # the bars are notated: music21's copy and makeNotation would cost the square
        bars.set_description("score: writing MusicXML")
        write_bytes_atomically(Path(path), exporter.parse())
    return Path(path)


def engrave(musicxml: str | Path, pdf: str | Path) -> Path:
    """Engrave a MusicXML file as a PDF with LilyPond or MuseScore.

    Raises:
        MusicLSTMError: no engraver is installed, or it failed (its last words quoted).
    """
    command = engraver()
    if command is None:
        check_score_kind("pdf")
    musicxml, pdf = Path(musicxml), Path(pdf)
    with tempfile.TemporaryDirectory(dir=pdf.parent) as scratch:
        made = Path(scratch) / "score.pdf"
        if command == ["lilypond"]:
            steps = [["musicxml2ly", "--output", str(Path(scratch) / "score.ly"), str(musicxml)]]
            steps.append(
                ["lilypond", "--pdf", "--output", str(Path(scratch) / "score"), str(Path(scratch) / "score.ly")]
            )
        else:
            steps = [[command[0], "-o", str(made), str(musicxml)]]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=ENGRAVE_SECONDS)
            if done.returncode != 0:
                raise MusicLSTMError(f"{musicxml}: {Path(step[0]).name} failed ({done.stderr.strip()[-300:]})")
        if not made.is_file():
            raise MusicLSTMError(f"{musicxml}: the engraver wrote no PDF")
        made.replace(pdf)
    return pdf
