"""Read music from where users keep it into rolls: the Bach chorales, a MIDI folder, a benchmark file.

Three kinds of source, told apart by `resolve_source`:
- `bach`: the chorales in music21's corpus (MusicXML and Humdrum), read on the beat grid in
  quarter-length offsets, ties merged, every part merged into one roll, the metre from the measures,
  the phrase ends from the fermatas;
- a folder: every `.mid`/`.midi` file under it, recursively, as a pianist hears it (the sustain pedal
  applied unless asked not to; see `roll.midi_to_roll`);
- a benchmark file of Boulanger-Lewandowski et al. (2012), `.pickle`/`.pkl`/`.json`: a dict of
  `train`/`valid`/`test`, each a list of pieces, each a list of steps, each a list of MIDI pitches.
  Its split is kept; it holds no onsets (derived from the roll: a repeated key is held) and no metre
  (4/4 from the first step). A pickle is untrusted: only plain containers, numbers and NumPy scalars load.

A file that cannot be used is skipped with its reason, never fatal. Nothing here imports torch.
"""

from __future__ import annotations

import codecs
import ctypes
import json
import logging
import os
import pickle
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
from tqdm import tqdm

from musiclstm.config import (
    BENCHMARK_STEPS_PER_BEAT,
    DEFAULT_STEPS_PER_BEAT,
    HIGHEST_PITCH,
    LOWEST_PITCH,
    SPLITS,
    MusicLSTMError,
)
from musiclstm.music.grid import Grid, merged_spans
from musiclstm.music.piece import Piece, Reading
from musiclstm.music.roll import midi_to_roll, nearest_step, spans_to_roll, steps_to_roll

log = logging.getLogger(__name__)

BACH = "bach"
MIDI_SUFFIXES = (".mid", ".midi")
BENCHMARK_SUFFIXES = (".pickle", ".pkl", ".json")
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")
NOT_CHORALES = {"bwv846"}  # the C major prelude of the Well-Tempered Clavier sits among music21's chorales


@dataclass(frozen=True)
class Source:
    """A resolved source: its kind, where it is, and the files it will read."""

    kind: str  # "bach", "folder" or "benchmark"
    location: str
    files: tuple[Path, ...]  # for a folder or bach: the files in reading order; for a benchmark: the file
    root: Path | None = None  # names are given relative to this folder

    def name_of(self, path: Path) -> str:
        if self.kind == BACH:
            return path.stem
        return path.relative_to(self.root).as_posix() if self.root else path.name


@dataclass
class SourceReading:
    """Everything read from a source: usable pieces, skipped files with reasons, and what was dropped."""

    pieces: list[Piece] = field(default_factory=list)  # each named, on its own grid, with what reading it left out
    splits: list[str | None] = field(default_factory=list)  # each piece's split in the source, or None: the corpus's
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    total: Reading = Reading()  # what reading changed and left out, every file read added (unusable ones too)


def bach_chorale_files() -> list[Path]:
    """List music21's Bach chorales, one file per chorale, MusicXML preferred over Humdrum."""
    from music21 import corpus as music21_corpus

    by_stem: dict[str, Path] = {}
    for path in sorted(map(Path, music21_corpus.getComposer(BACH))):
        if path.suffix not in SCORE_SUFFIXES or path.stem in NOT_CHORALES:
            continue
        if path.stem not in by_stem or path.suffix != ".krn":
            by_stem[path.stem] = path
    return [by_stem[stem] for stem in sorted(by_stem)]


def resolve_source(location: str, limit: int | None = None) -> Source:
    """Work out what kind of source `location` names and list its files.

    Raises:
        MusicLSTMError: the path does not exist, or is neither a folder nor a benchmark file.
    """
    if location == BACH:
        return Source(BACH, BACH, tuple(bach_chorale_files()[:limit]))
    path = Path(location).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
        if not files:
            raise MusicLSTMError(f"{path}: no .mid or .midi files in this folder or below it")
        return Source("folder", str(path.resolve()), tuple(files[:limit]), root=path)
    if path.is_file():
        if path.suffix.lower() in BENCHMARK_SUFFIXES:
            return Source("benchmark", str(path.resolve()), (path,))
        raise MusicLSTMError(
            f"{path}: not a source: give a folder of MIDI files, a benchmark file "
            f"({', '.join(BENCHMARK_SUFFIXES)}) or 'bach'"
        )
    raise MusicLSTMError(f"{location}: no such file or folder (or use 'bach' for the Bach chorales)")


def natural_steps_per_beat(kind: str) -> int:
    """The grid a source is read on when the user does not choose one."""
    return BENCHMARK_STEPS_PER_BEAT if kind == "benchmark" else DEFAULT_STEPS_PER_BEAT


def score_to_roll(path: str | Path, steps_per_beat: int) -> Piece:
    """Read a MusicXML or Humdrum score with music21, on the beat grid of its quarter-length offsets.

    Tied notes are one note (`stripTies`), struck where the tie begins. The grid comes from the
    measures of the first part (`score_grid`), its phrase ends from the fermatas of every part
    (`score_phrase_ends`). Grace notes are left out.
    """
    import music21  # a heavy import, paid only by sources that need it

    try:
        score = music21.converter.parseFile(str(path), forceSource=True, storePickle=False)
    except Exception as err:  # music21 raises many types for broken scores
        raise MusicLSTMError(f"{path}: unreadable score ({type(err).__name__}: {err})") from err
    spans: list[tuple[int, int, int]] = []
    n_off_keyboard = n_off_grid = 0
    for element in score.stripTies().flatten().notes:
        if element.duration.isGrace:
            continue
        start_position = float(element.offset) * steps_per_beat
        end_position = float(element.offset + element.quarterLength) * steps_per_beat
        start = nearest_step(start_position)
        end = max(nearest_step(end_position), start + 1)
        for pitch in getattr(element, "pitches", ()):
            if LOWEST_PITCH <= pitch.midi <= HIGHEST_PITCH:
                spans.append((pitch.midi, start, end))
                n_off_grid += not (start_position.is_integer() and end_position.is_integer())
            else:
                n_off_keyboard += 1
    n_steps = max([nearest_step(float(score.highestTime) * steps_per_beat)] + [end for _, _, end in spans])
    roll, onsets, n_merged = spans_to_roll(spans, n_steps)
    reading = Reading(len(spans), n_off_keyboard, 0, n_merged, n_off_grid=n_off_grid)
    grid = score_grid(score, steps_per_beat).with_phrase_ends(score_phrase_ends(score, steps_per_beat))
    return Piece(roll, onsets, grid, name=str(path), reading=reading)


def score_phrase_ends(score, steps_per_beat: int) -> tuple[tuple[int, int], ...]:
    """The phrase ends a music21 score marks: the steps of each note or chord with a fermata, rounded as its notes
    are, the spans of all parts joined where they overlap (`merged_spans`).

    Each written note counts as it stands, ties not merged: a fermata over the second note of a tie (as
    some chorales write it) marks that note's steps, where the merged note would have lost it.
    """
    from music21 import expressions

    spans = []
    for element in score.flatten().notes:
        if element.duration.isGrace or not any(isinstance(mark, expressions.Fermata) for mark in element.expressions):
            continue
        start = nearest_step(float(element.offset) * steps_per_beat)
        end = nearest_step(float(element.offset + element.quarterLength) * steps_per_beat)
        spans.append((start, max(end, start + 1)))
    return merged_spans(spans)


def score_grid(score, steps_per_beat: int) -> Grid:
    """The metre of a music21 score: a bar line where each measure of its first part starts, with
    the bar length of the time signature in force (`Grid.from_bar_lines`), so a first measure shorter
    than its time signature is a pickup and a change of time signature a change of the Grid. Each
    signature is kept as written (`Grid.signatures`: 6/8 stays 6/8).
    A later measure that starts part-way through its bar (`paddingLeft`: the second half of a bar
    notated in two, at a repeat or a phrase's end in most chorales) draws no bar line. A score
    without measures is 4/4 from its first step.
    """
    parts = score.parts or [score]
    bar_lines, signature = [], None
    for index, measure in enumerate(parts[0].getElementsByClass("Measure")):
        if index and measure.paddingLeft and measure.timeSignature is None:
            continue
        signature = measure.timeSignature or signature
        if signature is None:
            continue
        steps_per_bar = max(1, round(float(signature.barDuration.quarterLength) * steps_per_beat))
        written = (signature.numerator, signature.denominator)
        bar_lines.append((nearest_step(float(measure.offset) * steps_per_beat), steps_per_bar, written))
    return Grid.from_bar_lines(steps_per_beat, bar_lines)


def why_unusable(read: Reading) -> str | None:
    """Say why a file that parsed still gives nothing to learn from, or None when it is usable."""
    if read.n_notes:
        return None
    if read.n_drum_notes and not read.n_off_keyboard:
        return f"only drum tracks ({read.n_drum_notes} drum notes; drums are left out)"
    if read.n_off_keyboard:
        return f"all {read.n_off_keyboard} notes fall outside the 88 keys (MIDI {LOWEST_PITCH}..{HIGHEST_PITCH})"
    if read.n_unended:
        return f"no notes but {read.n_unended} never released (no note-off)"
    return "no notes"


def _read_one(job: tuple[Callable[[Path, int], Piece], Path, int]) -> Piece | str:
    """Read one file in a worker; a user-fixable problem comes back as its message."""
    reader, path, steps_per_beat = job
    try:
        return reader(path, steps_per_beat)
    except MusicLSTMError as err:
        return str(err)


PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal a process gets when its parent dies


def _die_with_parent(parent: int) -> None:
    """Pool worker set-up: on Linux, end the worker when the reading process dies, even by SIGKILL.

    Without it, a `data` run killed mid-way left its workers waiting for work that never comes.
    Ctrl-C and SIGTERM reach the whole process group; the reading process alone answers them (a
    worker would print its own traceback), and its workers end with it.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the parent was gone before the signal was set up
        os._exit(1)


def read_files(
    source: Source, steps_per_beat: int, workers: int = 1, progress: bool = False, pedal: bool = True
) -> SourceReading:
    """Read every file of a bach or folder source, in parallel when `workers` > 1; MIDI files with their
    sustain pedal applied unless `pedal` is False."""
    reader = score_to_roll if source.kind == BACH else partial(midi_to_roll, pedal=pedal)
    jobs = [(reader, path, steps_per_beat) for path in source.files]
    reading = SourceReading()
    bar = dict(total=len(jobs), desc=f"reading {source.kind}", unit="file", disable=not progress)
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers, initializer=_die_with_parent, initargs=(os.getpid(),)) as pool:
            try:
                results = list(tqdm(pool.map(_read_one, jobs, chunksize=4), **bar))
            except BaseException:  # Ctrl-C or SIGTERM: the files not begun are not read
                pool.shutdown(cancel_futures=True)
                raise
    else:
        results = [_read_one(job) for job in tqdm(jobs, **bar)]
    for path, result in zip(source.files, results, strict=True):
        name = source.name_of(path)
        if isinstance(result, str):
            reading.skipped.append((name, result.removeprefix(f"{path}: ")))
            continue
        reading.total += result.reading
        reason = why_unusable(result.reading)
        if reason:
            reading.skipped.append((name, reason))
        else:
            reading.pieces.append(replace(result, name=name))
            reading.splits.append(None)
    return reading


class BenchmarkUnpickler(pickle.Unpickler):
    """Unpickle only what the published benchmark files hold: containers, numbers, NumPy scalars.

    Any other global (a class or function a crafted file could call) is refused before it is
    looked up, so loading never runs code from the file.
    """

    ALLOWED = {
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),  # NumPy 1 spelling
        ("numpy._core.multiarray", "scalar"),  # NumPy 2 spelling
        ("_codecs", "encode"),  # how protocols 0-2 written by Python 3 spell bytes: str -> bytes, nothing more
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise MusicLSTMError(
                f"refused to load {module}.{name}: a benchmark pickle may hold only lists, dicts, "
                "numbers and NumPy scalars"
            )
        if name == "dtype":
            return np.dtype
        if name == "encode":
            return codecs.encode
        try:  # NumPy 2 moved numpy.core to numpy._core; files name either
            from numpy._core.multiarray import scalar
        except ImportError:
            from numpy.core.multiarray import scalar
        return scalar


def load_benchmark_data(path: Path) -> dict:
    """Load a benchmark file's raw dict, safely."""
    try:
        if path.suffix.lower() == ".json":
            with open(path, encoding="utf-8") as file:
                return json.load(file)
        with open(path, "rb") as file:
            return BenchmarkUnpickler(file, encoding="latin1").load()
    except MusicLSTMError as err:
        raise MusicLSTMError(f"{path}: {err}") from err
    except (OSError, ValueError, EOFError, pickle.UnpicklingError, UnicodeDecodeError) as err:
        raise MusicLSTMError(f"{path}: not a readable benchmark file ({type(err).__name__}: {err})") from err


def read_benchmark(
    source: Source, limit: int | None = None, steps_per_beat: int = BENCHMARK_STEPS_PER_BEAT
) -> SourceReading:
    """Read a benchmark file, keeping its own train/valid/test split.

    The file holds only the keys sounding at each step, so a key struck again without a gap is one
    held note (`onsets_of`), and every piece is 4/4 from its first step.
    """
    path = source.files[0]
    data = load_benchmark_data(path)
    if not isinstance(data, dict) or not set(data) & set(SPLITS):
        raise MusicLSTMError(f"{path}: not a benchmark file: expected a dict with keys {', '.join(SPLITS)}")
    reading = SourceReading()
    for split in SPLITS:
        pieces = data.get(split, [])
        if not isinstance(pieces, Sequence) or isinstance(pieces, (str, bytes)):
            raise MusicLSTMError(f"{path}: '{split}' must be a list of pieces")
        for index, steps in enumerate(pieces[:limit]):
            name = f"{split}/{index:04d}"
            try:
                roll, n_off = steps_to_roll(steps)
            except (TypeError, ValueError) as err:
                reading.skipped.append((name, f"not a list of steps of MIDI pitches ({err})"))
                continue
            reading.total += Reading(n_off_keyboard=n_off)
            reason = why_unusable(Reading(int(roll.sum()), n_off))
            if reason:
                reading.skipped.append((name, reason))
            else:
                reading.pieces.append(Piece(roll, grid=Grid(steps_per_beat), name=name))
                reading.splits.append(split)
    return reading


def read_source(
    source: Source,
    steps_per_beat: int,
    workers: int = 1,
    limit: int | None = None,
    progress: bool = False,
    pedal: bool = True,
) -> SourceReading:
    """Read any kind of source into pieces; `pedal` False reads MIDI files without their sustain pedal."""
    if source.kind == "benchmark":
        return read_benchmark(source, limit, steps_per_beat)
    return read_files(source, steps_per_beat, workers, progress, pedal)
