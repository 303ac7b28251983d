"""Prepare a blind listening test: generated and real passages of the same length, rendered alike.

A study is a folder:
- `study.json`: what the rating page may know: the clip ids (in no telling order), the bars and tempo,
  the name of the real music ("Bach"), the questions. Nothing in it says which clip is which.
- `clips/<id>.wav`: what raters hear. Every clip is the same number of samples long and has the same
  loudness (RMS), and comes from the same SoundFont, tempo and velocities, so that neither the file
  name, the length nor the loudness gives its source away. Ids are random (`secrets`).
- `manifest.json`: the answer key: each clip's source (`generated` or `real`) and origin. The page
  never reads it; `musiclstm listen report` does.
- `midi/<id>.mid`: each passage as MIDI, for the record.
- `ratings.sqlite`: the answers (see `ratings`).
The folder is built in a hidden staging folder beside its final place (`.<name>.staging-*`) and renamed
into it; a failure or an interruption (Ctrl-C, SIGTERM) removes the staging folder, so nothing is left
behind. One `prepare_study` at a time may write a folder: it holds an exclusive lock on `.<name>.lock`
beside it (released by the system if the process is killed), and a second one is refused at once.
"""

from __future__ import annotations

import fcntl
import glob
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import wavfile
from tqdm import tqdm

from musiclstm.config import VERSION, MusicLSTMError, StudyConfig
from musiclstm.data.corpus import Corpus, StoredPiece, load_corpus
from musiclstm.files import check_output_folder, read_json_object, write_json_atomically
from musiclstm.listening.ratings import QUESTIONS, RatingsStore
from musiclstm.music.grid import Grid
from musiclstm.music.render import SAMPLE_RATE_HZ, render_audio, write_midi, write_pcm

SOURCES = ("generated", "real")
STUDY_FILE = "study.json"
MANIFEST_FILE = "manifest.json"
RATINGS_FILE = "ratings.sqlite"
CLIPS_FOLDER = "clips"
TAIL_SECONDS = 1.5  # after the last bar: the final chord's release, faded out
FADE_SECONDS = 0.5
TARGET_RMS = 0.1  # -20 dBFS, lowered for every clip alike if one would clip
HELD_OUT_SPLITS = ("test", "valid")  # where real passages come from, in this order

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Study:
    """A prepared study folder, as the rating page sees it: no answer key."""

    folder: Path
    info: dict  # study.json: the clips, who made the real music, bars, tempo
    ratings: RatingsStore  # the answers, in ratings.sqlite

    @property
    def clip_ids(self) -> list[str]:
        return list(self.info["clips"])

    @property
    def real_name(self) -> str:
        return self.info["real_name"]

    def clip_path(self, clip_id: str) -> Path:
        return self.folder / CLIPS_FOLDER / f"{clip_id}.wav"

    def order_for(self, rater_id: str) -> list[str]:
        """The clips in the rater's own random order, the same at every visit."""
        order = self.clip_ids
        np.random.default_rng(list(rater_id.encode("utf-8"))).shuffle(order)
        return order


def open_study(folder: str | Path) -> Study:
    """Open a study folder made by `prepare_study`; a folder that is not one is named."""
    folder = Path(folder)
    if not (folder / STUDY_FILE).is_file():
        raise MusicLSTMError(
            f"{folder}: not a study folder (no {STUDY_FILE}); make one with 'musiclstm listen prepare'"
        )
    info = read_json_object(folder / STUDY_FILE)
    clips = info.get("clips")
    has_clip_list = isinstance(clips, list) and all(isinstance(clip, str) for clip in clips)
    if not has_clip_list or not isinstance(info.get("real_name"), str) or not isinstance(info.get("bars"), int):
        raise MusicLSTMError(f"{folder / STUDY_FILE}: clips, real_name or bars missing or wrong; was it edited?")
    missing = [clip for clip in clips if not (folder / CLIPS_FOLDER / f"{clip}.wav").is_file()]
    if missing or not clips:
        raise MusicLSTMError(f"{folder}: the study's clips are missing ({', '.join(missing[:3]) or 'none listed'})")
    return Study(folder, info, RatingsStore(folder / RATINGS_FILE))  # a bad database is named now


def as_study(study: Study | str | Path) -> Study:
    """A Study as given, or the study folder at a path opened; anything else is refused by name."""
    if isinstance(study, Study):
        return study
    if isinstance(study, str | os.PathLike):
        return open_study(study)
    raise MusicLSTMError(f"study must be a Study or a study folder's path, got {type(study).__name__} {study!r}")


def read_answer_key(study: Study) -> dict[str, dict]:
    """Each clip's source and origin, from the study's manifest."""
    key = read_json_object(study.folder / MANIFEST_FILE)
    clips = key.get("clips")
    if (
        not isinstance(clips, dict)
        or sorted(clips) != sorted(study.clip_ids)
        or not all(
            isinstance(entry, dict) and entry.get("source") in SOURCES and isinstance(entry.get("origin"), str)
            for entry in clips.values()
        )
    ):
        raise MusicLSTMError(f"{study.folder / MANIFEST_FILE}: does not match the study's clips; was it edited?")
    return clips


def passage_starts(piece: StoredPiece, steps: int) -> np.ndarray:
    """The piece's bar lines from which a passage of `steps` steps fits in it, increasing (a pickup is no bar line)."""
    lines = piece.grid.bar_starts(piece.frames)
    return lines[lines + steps <= piece.frames]


def latest_passages(starts: np.ndarray, steps: int) -> list[int]:
    """The most passages of `steps` steps from `starts` (increasing) that fit without overlapping, each as late as
    it can be: taken from the end backwards, so the i-th passage of any such set starts no later than the i-th here.
    """
    chosen: list[int] = []
    for start in starts[::-1].tolist():
        if not chosen or start + steps <= chosen[-1]:
            chosen.append(start)
    return chosen[::-1]


def spread_passages(starts: np.ndarray, steps: int, rng: np.random.Generator) -> list[int]:
    """As many passages as `latest_passages` finds, none overlapping, each start drawn by `rng` among those
    that follow the passage before and leave room for the rest."""
    chosen: list[int] = []
    free_from = -steps
    for latest in latest_passages(starts, steps):
        start = int(rng.choice(starts[(starts >= free_from) & (starts <= latest)]))
        chosen.append(start)
        free_from = start + steps
    return chosen


def count_real_passages(corpus: Corpus, steps: int) -> int:
    """How many passages of `steps` steps from bar lines the held-out pieces (test and valid) hold without
    overlapping: a property of the corpus, the same on every run and for every seed."""
    return sum(
        len(latest_passages(passage_starts(piece, steps), steps))
        for split in HELD_OUT_SPLITS
        for piece in corpus.split(split)
    )


def real_passages(corpus: Corpus, count: int, steps: int, rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """`count` passages of `steps` steps from the held-out pieces, each starting on one of its piece's bar lines,
    as (origin, roll (steps, 88)).

    Every piece of the test split, then of the valid split, holds as many passages as fit without
    overlapping (`count_real_passages` in all), placed by `rng`. One passage is taken from each piece,
    test first, while they last; then a second from each piece that holds two, and so on. The origin
    names the piece, its bars (a pickup is bar 1) and its split.

    Raises:
        MusicLSTMError: the held-out pieces hold fewer than `count` passages; the message gives how many.
    """
    placed = []
    for split in HELD_OUT_SPLITS:
        pieces = corpus.split(split)
        for index in rng.permutation(len(pieces)).tolist():
            starts = spread_passages(passage_starts(pieces[index], steps), steps, rng)
            placed.append((pieces[index], rng.permutation(starts).tolist()))
    rounds = max((len(starts) for _, starts in placed), default=0)
    chosen = [(piece, starts[round_]) for round_ in range(rounds) for piece, starts in placed if round_ < len(starts)]
    if len(chosen) < count:
        bars = steps // Grid(corpus.steps_per_beat).steps_per_bar
        raise MusicLSTMError(
            f"{corpus.path}: its held-out pieces (test and valid splits) hold only {len(chosen)} passages of "
            f"{bars} bars that start on a bar line and do not overlap, {count} are needed; "
            "ask for fewer --pieces or --bars"
        )
    repeated = len({piece.name for piece, _ in chosen[:count]}) < count
    if repeated:
        logger.info("fewer held-out pieces than passages: some pieces give more than one (never overlapping)")
    return [passage_of(piece, start, steps) for piece, start in chosen[:count]]


def passage_of(stored: StoredPiece, start: int, steps: int) -> tuple[str, np.ndarray]:
    """The passage of `steps` steps from `start` of a stored piece, as (origin, roll (steps, 88))."""
    piece = stored.piece
    lines = piece.bar_lines()
    first, last = int(np.searchsorted(lines, start)) + 1, int(np.searchsorted(lines, start + steps))
    return f"{piece.name}, bars {first}-{last} ({stored.split})", piece.roll[start : start + steps]


def read_wav(path: Path) -> np.ndarray:
    """A 16-bit WAV file as mono float samples in [-1, 1]."""
    samples = wavfile.read(path)[1]  # (frames,) or (frames, channels), int16
    return (samples.reshape(len(samples), -1).mean(axis=1) / 32768).astype(np.float64)


def level_clips(waves: list[np.ndarray], seconds: float) -> list[np.ndarray]:
    """Cut or pad every clip to `seconds` (fading out the end) and bring all to one RMS loudness.

    The common loudness is TARGET_RMS, or lower if that would push any clip's peak past full scale.
    """
    length = round(seconds * SAMPLE_RATE_HZ)
    fade = round(FADE_SECONDS * SAMPLE_RATE_HZ)
    envelope = np.ones(length)
    envelope[-fade:] = np.linspace(1, 0, fade)
    shaped = [np.pad(samples[:length], (0, max(0, length - len(samples)))) * envelope for samples in waves]
    loudness = [float(np.sqrt(np.mean(samples**2))) for samples in shaped]
    headroom = [0.99 * rms / np.abs(samples).max() for samples, rms in zip(shaped, loudness, strict=True) if rms > 0]
    target = min([TARGET_RMS, *headroom])
    return [samples * (target / rms) if rms > 0 else samples for samples, rms in zip(shaped, loudness, strict=True)]


def default_real_name(corpus: Corpus) -> str:
    """What raters are asked to tell the computer from: "Bach" for the chorales, else the corpus's source name."""
    if corpus.manifest.get("source_kind") == "bach":
        return "Bach"
    return Path(str(corpus.source)).stem or "the real music"


@dataclass(frozen=True)
class Passage:
    """One clip-to-be: where it comes from, and its roll (steps, 88)."""

    source: str  # "generated" or "real"
    origin: str
    roll: np.ndarray


def generated_passages(composer, count: int, steps: int, seed: int, progress: bool) -> tuple[list[Passage], dict]:
    """`count` pieces of `steps` steps composed with the model's default settings, primers cut off; and the settings."""
    from musiclstm.composing.generation import generate

    composition = generate(composer, num_outputs=count, length=steps, seed=seed, progress=progress)
    passages = [
        Passage("generated", f"piece {number} of {count}, after {primer}", roll[composition.primer_steps :])
        for number, (roll, primer) in enumerate(zip(composition.rolls, composition.primer_sources, strict=True), 1)
    ]
    return passages, composition.settings


def prepare_study(
    out: str | Path,
    model: str | Path | None = None,
    data: str | Path | None = None,
    pieces: int = 20,
    bars: int = 16,
    seed: int | None = None,
    real_name: str | None = None,
    soundfont: str | Path | None = None,
    progress: bool = False,
) -> Study:
    """Make a study folder: `pieces` generated passages of `bars` bars (the model's default settings) and as
    many real ones from the held-out pieces of `data` (default: the model's own corpus; test, then valid:
    `real_passages`), all rendered alike.

    Raises:
        MusicLSTMError: pieces, bars or seed out of range (before any work), `out` already exists and is
            not empty, another `prepare_study` is writing `out`, a bad model or corpus, too few held-out
            passages, or a failed rendering.
    """
    study = StudyConfig(out, model, data, pieces, bars, seed, real_name, soundfont)  # checked before any work
    pieces, bars, seed = study.pieces, study.bars, study.seed
    out = check_output_folder(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with writing_alone(out):
        if out.exists() and any(out.iterdir()):
            raise MusicLSTMError(f"{out}: already holds files (perhaps another study's ratings); choose another --out")
        from musiclstm.composing.composer import open_composer  # torch: only once the arguments and the folder are good

        composer = open_composer(model)
        corpus = load_corpus(data if data is not None else composer.corpus)
        if corpus.steps_per_beat != composer.steps_per_beat:
            raise MusicLSTMError(
                f"{corpus.path}: {corpus.steps_per_beat} steps per beat, the model learned {composer.steps_per_beat}"
            )
        grid = Grid(composer.steps_per_beat)
        steps = bars * grid.steps_per_bar
        rng = np.random.default_rng(seed)
        real = [Passage("real", *passage) for passage in real_passages(corpus, pieces, steps, rng)]
        generated, generation = generated_passages(composer, pieces, steps, seed, progress)
        clips = dict(zip(unique_ids(2 * pieces), generated + real, strict=True))
        info = {
            "clips": sorted(clips),
            "real_name": real_name or default_real_name(corpus),
            "bars": bars,
            "tempo_bpm": generation["tempo_bpm"],
            "seconds_per_clip": bars * grid.beats_per_bar * 60 / generation["tempo_bpm"] + TAIL_SECONDS,
            "questions": list(QUESTIONS),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
            "musiclstm_version": VERSION,
        }
        answer_key = {
            "model": str(composer.folder),
            "corpus": str(corpus.path),
            "seed": seed,
            "generation": generation,
            "clips": {clip_id: {"source": clip.source, "origin": clip.origin} for clip_id, clip in clips.items()},
        }
        with staging(out) as building:
            write_clips(building, clips, grid, info, soundfont, progress)
            write_json_atomically(building / STUDY_FILE, info)
            write_json_atomically(building / MANIFEST_FILE, answer_key)
            RatingsStore.create(building / RATINGS_FILE, list(clips))
    return open_study(out)


@contextmanager
def writing_alone(out: Path) -> Iterator[None]:
    """Hold the exclusive lock of study folder `out` (an flock on `.<name>.lock` beside it), or refuse at once.

    The lock file is removed on the way out; a run that finds the file it locked already removed (its
    holder just finished) takes the new one. Staging folders of runs killed outright are removed here:
    while the lock is held, none is in use.

    Raises:
        MusicLSTMError: another process holds the lock.
    """
    lock = out.parent / f".{out.name}.lock"
    handle = take_lock(lock)
    if handle is None:
        raise MusicLSTMError(f"another listen prepare is writing {out}; wait for it to end, or choose another --out")
    try:
        for stale in out.parent.glob(f".{glob.escape(out.name)}.staging-*"):
            logger.info("removing %s, left by a listen prepare that was killed", stale)
            shutil.rmtree(stale, ignore_errors=True)
        yield
    finally:
        lock.unlink(missing_ok=True)
        os.close(handle)


def take_lock(path: Path) -> int | None:
    """An open handle holding the exclusive flock of file `path` (made if missing); None if another process holds it."""
    while True:
        handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.path.samestat(os.fstat(handle), os.stat(path)):
                return handle
        except BlockingIOError:
            os.close(handle)
            return None
        except FileNotFoundError:
            pass  # its holder removed it as it finished: lock the next one
        os.close(handle)


@contextmanager
def staging(out: Path) -> Iterator[Path]:
    """A new folder to build study `out` in, renamed to `out` when the block ends well, removed when it does not.

    Removed on any exception, Ctrl-C and SIGTERM (which the command line raises as KeyboardInterrupt) too.
    """
    scratch = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    try:
        building = scratch / "study"  # made by mkdir, with the user's usual permissions (mkdtemp's are 0700)
        building.mkdir()
        yield building
        if out.exists():
            out.rmdir()
        building.rename(out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    scratch.rmdir()


def write_clips(folder: Path, clips: dict[str, Passage], grid: Grid, info: dict, soundfont, progress: bool) -> None:
    """Write each passage as `midi/<id>.mid` and, rendered and levelled with all the others, `clips/<id>.wav`."""
    (folder / "midi").mkdir(parents=True)
    (folder / CLIPS_FOLDER).mkdir()
    waves = []
    for clip_id, clip in tqdm(clips.items(), desc="rendering clips", unit="clip", disable=not progress):
        midi = write_midi(clip.roll, folder / "midi" / f"{clip_id}.mid", grid, info["tempo_bpm"])
        render_audio(midi, folder / "rendered.wav", soundfont)
        waves.append(read_wav(folder / "rendered.wav"))
    (folder / "rendered.wav").unlink()
    for clip_id, samples in zip(clips, level_clips(waves, info["seconds_per_clip"]), strict=True):
        write_pcm(samples, folder / CLIPS_FOLDER / f"{clip_id}.wav")


def unique_ids(count: int) -> list[str]:
    """`count` different random clip ids, 8 hex digits each."""
    ids: set[str] = set()
    while len(ids) < count:
        ids.add(secrets.token_hex(4))
    return list(ids)
