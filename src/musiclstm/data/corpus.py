"""Turn a source into a corpus on disk, and load it back.

A corpus is a folder:
- `rolls-<hash>.npy`: every piece's events once, end to end, bit-packed along the keys: a uint8
  array of shape (total_frames, 22), bytes 0-10 the keys sounding at each frame, bytes 11-21 the
  keys struck there (a subset of those sounding); loaded memory-mapped.
- `manifest.json`: the settings, the source's fingerprint, and `pieces`, a list of
  `{"name", "split", "frames", "offset", "grid", "merged"}` in storage order (`grid` is the piece's
  metre and its marked phrase ends, `Grid.to_dict()`; `merged` the notes the grid could not hold
  apart); also the skipped files with reasons, the notes dropped, and `read_changes`: what reading
  changed or lost beside those, by kind (`Reading.changes`: `pedal_held`, `zero_length`,
  `overlapping`, `off_grid`, ...; absent from a corpus built before they were counted, read as none).
  Format 2; a corpus of format 1 (no struck keys, no metre) must be rebuilt. A corpus of format 2
  built before phrase ends were kept has grids without `phrase_ends`: it loads with none marked, and
  `data` builds it again (`KEPT_FROM_SOURCES` is in the fingerprint).

The manifest is written last and names its rolls file, so replacing it is the one step that commits
a build: an interrupted run leaves the previous corpus whole. Splits are by piece, never by window.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import numpy as np

from musiclstm.config import CORPUS_FORMAT_VERSION, N_KEYS, SPLITS, VERSION, CorpusConfig, MusicLSTMError
from musiclstm.data.sources import Source, natural_steps_per_beat, read_source, resolve_source
from musiclstm.files import check_output_folder, read_json_object, write_atomically, write_json_atomically
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece, Reading

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
KEY_BYTES = (N_KEYS + 7) // 8  # bytes for one frame's 88 keys
PACKED_WIDTH = 2 * KEY_BYTES  # bytes per frame on disk: the keys sounding, then the keys struck
MOST_MERGED_SHOWN = 3  # files named in the summary's line on merged notes
COUNTED_APART = ("off_keyboard", "drum_notes", "merged")  # kept in the manifest before `read_changes` was
KEPT_FROM_SOURCES = ("phrase_ends",)  # what reading keeps within format 2: a corpus built before is built again


@dataclass(frozen=True)
class StoredPiece:
    """One piece of a corpus as stored: its name, split and metre, and its bits, unpacked on each access."""

    name: str
    split: str
    frames: int
    packed: np.ndarray = field(repr=False, compare=False)  # (frames, 22) uint8, a view of the rolls file
    grid: Grid

    @property
    def piece(self) -> Piece:
        """The piece itself, unpacked: its keys sounding and struck, its metre and its name."""
        return Piece(self.roll, self.onsets, self.grid, name=self.name)

    @property
    def roll(self) -> np.ndarray:
        """The keys sounding, a (frames, 88) bool array; column k is MIDI pitch 21 + k."""
        return unpack_roll(self.packed)

    @property
    def events(self) -> np.ndarray:
        """The piece as events (frames, 176) bool: the keys sounding, then the keys struck (`reading.as_events`)."""
        return unpack_events(self.packed)

    @property
    def onsets(self) -> np.ndarray:
        """The keys struck at each frame, a (frames, 88) bool array; always among the keys sounding."""
        return unpack_roll(np.asarray(self.packed)[:, KEY_BYTES:])


@dataclass(frozen=True)
class Corpus:
    """The pieces of a corpus in storage order, with the settings they were made with."""

    path: Path
    manifest: dict
    pieces: list[StoredPiece]

    @property
    def steps_per_beat(self) -> int:
        return self.manifest["steps_per_beat"]

    @property
    def source(self) -> str:
        return self.manifest["source"]

    def split(self, name: str) -> list[StoredPiece]:
        """The pieces of one split (`train`, `valid` or `test`)."""
        if name not in SPLITS:
            raise MusicLSTMError(f"unknown split '{name}': choose one of {', '.join(SPLITS)}")
        return [piece for piece in self.pieces if piece.split == name]

    def phrase_bars(self) -> int | None:
        """How many bars a phrase of the train split lasts: the median number of bars between the first steps of
        consecutive marked phrase ends (fermatas), rounded to whole bars, at least 1; None where none are marked."""
        gaps = [
            (later[0] - earlier[0]) / piece.grid.steps_per_bar
            for piece in self.split("train")
            for earlier, later in pairwise(piece.grid.phrase_ends)
        ]
        return max(1, round(float(np.median(gaps)))) if gaps else None

    def held_out(self) -> list[StoredPiece]:
        """What musiclstm means by held-out pieces (primers, real music to compare with, listening clips):
        the test split, else (a corpus without one) the valid split; may be empty."""
        return self.split("test") or self.split("valid")

    def __iter__(self) -> Iterator[StoredPiece]:
        return iter(self.pieces)

    def __len__(self) -> int:
        return len(self.pieces)

    def __getitem__(self, index: int) -> StoredPiece:
        return self.pieces[index]


def pack_roll(roll: np.ndarray) -> np.ndarray:
    """Pack a (frames, 88) bool roll into (frames, 11) bytes."""
    return np.packbits(np.asarray(roll, dtype=bool), axis=1)


def pack_events(roll: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Pack the keys sounding and struck, each (frames, 88) bool, into (frames, 22) bytes.

    A struck key that is not sounding is dropped: onsets are kept a subset of the roll.
    """
    roll = np.asarray(roll, dtype=bool)
    return np.concatenate([pack_roll(roll), pack_roll(roll & np.asarray(onsets, dtype=bool))], axis=1)


def unpack_roll(packed: np.ndarray) -> np.ndarray:
    """Unpack the keys sounding, a (frames, 88) bool roll, from (frames, 22) events or (frames, 11) bytes."""
    return np.unpackbits(np.asarray(packed)[:, :KEY_BYTES], axis=1, count=N_KEYS).astype(bool)


def unpack_events(packed: np.ndarray) -> np.ndarray:
    """Unpack (frames, 22) bytes into (frames, 176) bool: the 88 keys sounding, then the 88 keys struck."""
    packed = np.asarray(packed)
    if packed.ndim != 2 or packed.shape[1] != PACKED_WIDTH:
        raise MusicLSTMError(f"packed events must have shape (frames, {PACKED_WIDTH}), got {packed.shape}")
    return np.unpackbits(packed, axis=1).astype(bool)  # 88 keys fill 11 bytes exactly: no padding between


def assign_splits(given: list[str | None], fractions: tuple[float, float, float], seed: int) -> list[str]:
    """Give each piece a split, shuffling by piece with `seed`; pieces the source already split (`given`) keep theirs.

    With three or more pieces to split, valid and test get at least one each (when their fraction is
    above zero), so a small corpus can still be validated.
    """
    if all(given):
        return list(given)
    n = len(given)
    order = np.random.default_rng(seed).permutation(n)
    n_valid, n_test = (
        max(1, round(fraction * n)) if n >= 3 and fraction > 0 else round(fraction * n) for fraction in fractions[1:]
    )
    n_train = n - n_valid - n_test
    split_of_rank = ["train"] * n_train + ["valid"] * n_valid + ["test"] * n_test
    splits = [""] * n
    for rank, index in enumerate(order):
        splits[index] = split_of_rank[rank]
    return splits


def fingerprint(source: Source, config: CorpusConfig, steps_per_beat: int) -> str:
    """Hash what a build depends on: settings, and each source file's name, size and modification time."""
    files = [(str(path), path.stat().st_size, path.stat().st_mtime_ns) for path in source.files]
    settings = dict(
        config.to_dict(),
        source=source.location,
        steps_per_beat=steps_per_beat,
        workers=None,
        format=CORPUS_FORMAT_VERSION,
        kept=KEPT_FROM_SOURCES,
    )
    blob = json.dumps([settings, files], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def read_manifest(path: Path) -> dict:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise MusicLSTMError(f"{path}: not a corpus (no {MANIFEST}); build one with 'musiclstm data'")
    manifest = read_json_object(manifest_path)
    if manifest.get("format_version") != CORPUS_FORMAT_VERSION:
        raise MusicLSTMError(
            f"{manifest_path}: corpus format {manifest.get('format_version')} is not the supported "
            f"{CORPUS_FORMAT_VERSION}; rebuild it with 'musiclstm data'"
        )
    return manifest


def load_corpus(path: str | Path) -> Corpus:
    """Load a corpus folder; the rolls are memory-mapped, not read into memory.

    Raises:
        MusicLSTMError: the folder is not a corpus, or its files do not agree with each other.
    """
    path = Path(path)
    manifest = read_manifest(path)
    rolls_path = path / manifest["rolls_file"]
    try:
        packed = np.load(rolls_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise MusicLSTMError(f"{rolls_path}: unreadable rolls file ({err}); rebuild the corpus") from err
    if packed.shape != (manifest["total_frames"], PACKED_WIDTH):
        raise MusicLSTMError(
            f"{rolls_path}: holds {packed.shape}, the manifest expects "
            f"({manifest['total_frames']}, {PACKED_WIDTH}); rebuild the corpus"
        )
    pieces = [
        StoredPiece(
            entry["name"],
            entry["split"],
            entry["frames"],
            packed[entry["offset"] : entry["offset"] + entry["frames"]],
            Grid.from_dict(entry["grid"]),
        )
        for entry in manifest["pieces"]
    ]
    return Corpus(path, manifest, pieces)


def build_corpus(config: CorpusConfig, out: str | Path, force: bool = False, progress: bool = False) -> dict:
    """Read a source into a corpus folder and return its summary.

    An unchanged source with the same settings reuses the corpus already at `out` unless `force`.

    Raises:
        MusicLSTMError: the source is unknown or missing, or not one file in it is usable.
    """
    started = time.perf_counter()
    out = check_output_folder(out)
    source = resolve_source(config.source, config.limit)
    steps_per_beat = config.steps_per_beat or natural_steps_per_beat(source.kind)
    source_fingerprint = fingerprint(source, config, steps_per_beat)
    if not force and (out / MANIFEST).is_file():
        try:
            corpus = load_corpus(out)
        except MusicLSTMError as err:
            log.info("rebuilding: the corpus at %s cannot be reused (%s)", out, err)
        else:
            if corpus.manifest.get("fingerprint") == source_fingerprint:
                log.info("reusing %s: the source and settings are unchanged", out)
                return summarize(corpus, seconds=time.perf_counter() - started, reused=True)

    reading = read_source(source, steps_per_beat, config.workers, config.limit, progress, config.pedal)
    if not reading.pieces:
        reasons = "; ".join(f"{name}: {reason}" for name, reason in reading.skipped[:5])
        raise MusicLSTMError(f"{config.source}: no usable piece among {len(reading.skipped)} ({reasons})")
    splits = assign_splits(reading.splits, config.split_fractions, config.seed)
    manifest = write_corpus(
        out,
        reading.pieces,
        splits,
        dict(
            source=source.location,
            source_kind=source.kind,
            steps_per_beat=steps_per_beat,
            seed=config.seed,
            split_fractions=list(config.split_fractions),
            limit=config.limit,
            pedal=config.pedal,
            fingerprint=source_fingerprint,
            skipped=[{"name": name, "reason": reason} for name, reason in reading.skipped],
            notes_off_keyboard=reading.total.n_off_keyboard,
            drum_notes=reading.total.n_drum_notes,
            read_changes={kind: count for kind, count in reading.total.changes().items() if kind not in COUNTED_APART},
            files_read=len(source.files) if source.kind != "benchmark" else 1,
        ),
    )
    summary = summarize(load_corpus(out), seconds=time.perf_counter() - started, reused=False)
    log.info("wrote %s (%d pieces)", out, len(manifest["pieces"]))
    return summary


def write_corpus(out: Path, pieces: list[Piece], splits: list[str], settings: dict) -> dict:
    """Store the pieces' rolls and onsets once and commit them with the manifest; remove rolls files no manifest
    names. Each piece keeps its name, its grid and the notes its reading merged.

    Raises:
        MusicLSTMError: a piece's grid is not at the settings' `steps_per_beat`.
    """
    out.mkdir(parents=True, exist_ok=True)
    for piece in pieces:
        if piece.steps_per_beat != settings["steps_per_beat"]:
            raise MusicLSTMError(
                f"{piece.name}: on a grid of {piece.steps_per_beat} steps per beat, the corpus "
                f"{settings['steps_per_beat']}"
            )
    order = sorted(range(len(pieces)), key=lambda i: (SPLITS.index(splits[i]), pieces[i].name))
    packed = np.concatenate([pack_events(pieces[i].roll, pieces[i].onsets) for i in order])
    digest = hashlib.sha256(packed.tobytes()).hexdigest()[:16]
    rolls_file = f"rolls-{digest}.npy"
    write_atomically(out / rolls_file, lambda file: np.save(file, packed, allow_pickle=False))
    entries, offset = [], 0
    for i in order:
        piece, frames = pieces[i], len(pieces[i].roll)
        grid = piece.grid.to_dict()
        entries.append(
            {
                "name": piece.name,
                "split": splits[i],
                "frames": frames,
                "offset": offset,
                "grid": grid,
                "merged": piece.reading.n_merged if piece.reading else 0,
            }
        )
        offset += frames
    manifest = dict(
        format_version=CORPUS_FORMAT_VERSION,
        musiclstm_version=VERSION,
        **settings,
        rolls_file=rolls_file,
        total_frames=offset,
        pieces=entries,
    )
    write_json_atomically(out / MANIFEST, manifest)
    for stale in out.glob("rolls-*.npy"):
        if stale.name != rolls_file:
            stale.unlink()
    return manifest


def summarize(corpus: Corpus, seconds: float, reused: bool) -> dict:
    """Count pieces, frames and notes per frame by split, the notes kept and merged on the grid, and
    the skipped files with their reasons.

    `notes_kept` counts the struck keys (one per note the corpus holds); `notes_merged` the notes
    lost because another note of the same key started on the same step, with `most_merged` the
    files that lost most, as [name, count]; `read_changes` the other changes and losses of reading
    by kind (empty for a corpus built before they were counted).
    """
    manifest = corpus.manifest
    splits = {}
    for split in SPLITS:
        pieces = corpus.split(split)
        frames = sum(piece.frames for piece in pieces)
        sounding = sum(int(np.unpackbits(np.asarray(piece.packed)[:, :KEY_BYTES]).sum()) for piece in pieces)
        splits[split] = {
            "pieces": len(pieces),
            "frames": frames,
            "notes_per_frame": round(sounding / frames, 3) if frames else 0.0,
        }
    merged = sorted((entry for entry in manifest["pieces"] if entry["merged"]), key=lambda entry: -entry["merged"])
    return {
        "path": str(corpus.path),
        "source": manifest["source"],
        "steps_per_beat": manifest["steps_per_beat"],
        "splits": splits,
        "files_read": manifest["files_read"],
        "skipped": manifest["skipped"],
        "notes_off_keyboard": manifest["notes_off_keyboard"],
        "drum_notes": manifest["drum_notes"],
        "notes_kept": sum(int(np.unpackbits(np.asarray(piece.packed)[:, KEY_BYTES:]).sum()) for piece in corpus),
        "notes_merged": sum(entry["merged"] for entry in manifest["pieces"]),
        "most_merged": [[entry["name"], entry["merged"]] for entry in merged[:MOST_MERGED_SHOWN]],
        "read_changes": dict(manifest.get("read_changes", {})),
        "bytes_on_disk": (corpus.path / manifest["rolls_file"]).stat().st_size,
        "seconds": round(seconds, 2),
        "reused": reused,
    }


def format_summary(summary: dict) -> str:
    """Render a corpus summary as a short table for the terminal."""
    verb = "reused" if summary["reused"] else "built"
    lines = [
        f"Corpus {verb}: {summary['path']}",
        f"  source {summary['source']}, {summary['steps_per_beat']} steps per beat, "
        f"{summary['bytes_on_disk'] / 1e6:.2f} MB of rolls, {summary['seconds']:.1f} s",
        f"  {'split':<6} {'pieces':>7} {'frames':>9} {'notes/frame':>12}",
    ]
    for split in SPLITS:
        row = summary["splits"][split]
        lines.append(f"  {split:<6} {row['pieces']:>7} {row['frames']:>9} {row['notes_per_frame']:>12.2f}")
    dropped = []
    if summary["notes_off_keyboard"]:
        dropped.append(f"{summary['notes_off_keyboard']} notes off the 88 keys")
    if summary["drum_notes"]:
        dropped.append(f"{summary['drum_notes']} drum notes")
    if dropped:
        lines.append("  dropped: " + ", ".join(dropped))
    lines.append(f"  notes kept: {summary['notes_kept']:,}")
    merged = f"  notes merged on the grid: {summary['notes_merged']:,} (two notes of one key starting in one step)"
    if summary["most_merged"]:
        merged += "; most in " + ", ".join(f"{name} ({count:,})" for name, count in summary["most_merged"])
    lines.append(merged)
    known = {kind: count for kind, count in summary.get("read_changes", {}).items() if kind in Reading.WORDS}
    changed = Reading(**{f"n_{kind}": count for kind, count in known.items()}).in_words()
    if changed:
        lines.append(f"  changed on reading: {changed}")
    skipped = summary["skipped"]
    lines.append(f"  skipped {len(skipped)} of {summary['files_read']} files" if skipped else "  skipped none")
    lines += [f"    {entry['name']}: {entry['reason']}" for entry in skipped]
    return "\n".join(lines)
