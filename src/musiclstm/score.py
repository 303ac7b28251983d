"""Write a roll as sheet music: MusicXML through music21, and a PDF where LilyPond or MuseScore is installed.

The score is a piano grand staff split at middle C (C4 and above on the treble staff), in 4/4, with
the piece's key signature (the key it was composed in, else the one music21's key analysis finds)
and its tempo. A roll knows held notes, not repeated strikes, so each run of a key is one note, tied
where it crosses a bar line or where another note of its staff starts or stops; silence is written
as rests. `--score pdf` engraves the MusicXML with LilyPond (musicxml2ly, then lilypond) or MuseScore.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from musiclstm.config import BEATS_PER_BAR, LOWEST_PITCH, MusicLSTMError
from musiclstm.files import write_bytes_atomically
from musiclstm.roll import roll_to_notes

SCORE_KINDS = ("musicxml", "pdf")
MIDDLE_C = 60
MUSESCORE_COMMANDS = ("mscore", "musescore", "mscore4portable", "musescore4", "mscore3")
ENGRAVE_SECONDS = 300


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


def staff_part(roll: np.ndarray, steps_per_beat: int, clef, header: list):
    """One staff of the roll as a music21 Part of chords and rests, measures and ties made."""
    from music21 import chord, note, stream, tie

    part = stream.Part()
    part.append([clef, *header])
    notes = roll_to_notes(roll)
    cuts = sorted({0, len(roll), *(start for _, start, _ in notes), *(stop for _, _, stop in notes)})
    for begin, end in zip(cuts, cuts[1:], strict=False):
        sounding = [(pitch, start, stop) for pitch, start, stop in notes if start < end and begin < stop]
        length = (end - begin) / steps_per_beat
        if not sounding:
            part.append(note.Rest(quarterLength=length))
            continue
        element = chord.Chord([pitch for pitch, _, _ in sounding], quarterLength=length)
        for member, (_, start, stop) in zip(element.notes, sounding, strict=True):
            begins, ends = start == begin, stop == end
            if not (begins and ends):
                member.tie = tie.Tie("start" if begins else "stop" if ends else "continue")
        part.append(element)
    return part.makeNotation()


def roll_score(roll: np.ndarray, steps_per_beat: int, tempo_bpm: float, key: str | None = None, title: str = ""):
    """The roll as a music21 Score: a piano grand staff split at middle C, 4/4, key signature and tempo.

    `key` is "D major", "B minor", ... (None or another scale: music21's key analysis chooses).
    """
    from music21 import clef, layout, metadata, meter, stream, tempo
    from music21 import key as keys

    roll = np.asarray(roll, dtype=bool)
    split = MIDDLE_C - LOWEST_PITCH
    upper, lower = roll.copy(), roll.copy()
    upper[:, :split], lower[:, split:] = False, False
    score = stream.Score()
    score.metadata = metadata.Metadata(title=title or "musiclstm", composer="musiclstm")
    root, _, mode = (key or "").partition(" ")
    signature = keys.Key(root, mode) if mode in ("major", "minor") else None
    parts = []
    for staff, staff_clef in ((upper, clef.TrebleClef()), (lower, clef.BassClef())):
        header = [meter.TimeSignature(f"{BEATS_PER_BAR}/4")]
        header += [copy.deepcopy(signature)] if signature else []
        header += [tempo.MetronomeMark(number=tempo_bpm)] if staff is upper else []
        parts.append(staff_part(staff, steps_per_beat, staff_clef, header))
    if signature is None:
        found = stream.Score(parts).analyze("key")
        for part in parts:
            part.getElementsByClass("Measure").first().insert(0, keys.Key(found.tonic.name, found.mode))
    for part in parts:
        score.insert(0, part)
    score.insert(0, layout.StaffGroup(parts, symbol="brace", barTogether=True))
    return score


def write_score(
    roll: np.ndarray, path: str | Path, steps_per_beat: int, tempo_bpm: float, key: str | None = None, title: str = ""
) -> Path:
    """Write the roll's score as MusicXML to `path` (atomically)."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    exported = GeneralObjectExporter(roll_score(roll, steps_per_beat, tempo_bpm, key, title)).parse()
    write_bytes_atomically(Path(path), exported)
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
