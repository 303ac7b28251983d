"""Benchmark the corpus pipeline: files per second with 1 and 2 workers, and memory against the seed's arrays.

The MIDI folder is music21's Bach chorales written out as ordinary multi-track MIDI files (one track
per voice, tempo and time signature included), made once and kept in `--midi-dir`.
Memory compares our corpus (bit-packed rolls, 11 bytes per frame, windows sliced on the fly) with
the seed's preprocessing, which materialises float32 arrays X (N, 64, 88) and y (N, 88) for N
windows of every piece; both counted for the same pieces at the same steps per beat.

    .venv/bin/python benchmarks/bench_corpus.py --files 200
Prints a table (and one JSON line with --json). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from musiclstm import CorpusConfig, build_corpus, load_corpus
from musiclstm.config import DEFAULT_WINDOW, N_KEYS
from musiclstm.data.sources import bach_chorale_files
from musiclstm.network.bundle import cpu_name

FLOAT32_BYTES = 4


def make_midi_folder(folder: Path, n_files: int) -> list[Path]:
    """Write the first `n_files` chorales as MIDI with music21 (skipped for files already there)."""
    import music21

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for score_path in bach_chorale_files()[:n_files]:
        target = folder / f"{score_path.stem}.mid"
        if not target.exists():
            music21.converter.parse(str(score_path)).write("midi", fp=str(target))
        written.append(target)
    return written


def seed_array_bytes(corpus, window: int) -> int:
    """Bytes of the seed's float32 X (N, window, 88) and y (N, 88), one window per frame that has `window` before it."""
    n_windows = sum(max(piece.frames - window, 0) for piece in corpus)
    return n_windows * (window + 1) * N_KEYS * FLOAT32_BYTES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=200, help="chorales to write as MIDI and read back")
    parser.add_argument("--midi-dir", type=Path, default=Path(tempfile.gettempdir()) / "musiclstm-bench-midi")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    files = make_midi_folder(args.midi_dir, args.files)
    result = {"cpu": cpu_name(), "files": len(files), "files_per_second": {}}
    with tempfile.TemporaryDirectory() as scratch:
        for workers in (1, 2):
            started = time.perf_counter()
            build_corpus(
                CorpusConfig(str(args.midi_dir), workers=workers, limit=args.files), Path(scratch) / "c", force=True
            )
            result["files_per_second"][workers] = round(len(files) / (time.perf_counter() - started), 1)
        corpus = load_corpus(Path(scratch) / "c")
        frames = sum(piece.frames for piece in corpus)
        corpus_bytes = (Path(scratch) / "c" / corpus.manifest["rolls_file"]).stat().st_size
    seed_bytes = seed_array_bytes(corpus, DEFAULT_WINDOW)
    result.update(
        frames=frames,
        corpus_bytes=corpus_bytes,
        seed_float32_bytes=seed_bytes,
        seed_windows_lost=sum(min(piece.frames, DEFAULT_WINDOW) for piece in corpus),
        memory_ratio=round(seed_bytes / corpus_bytes, 1),
    )
    if args.json:
        print(json.dumps(result))
        return
    print(f"CPU: {result['cpu']}; {len(files)} MIDI files, {frames} frames at 4 steps per beat")
    for workers, rate in result["files_per_second"].items():
        print(f"  reading with {workers} worker(s): {rate} files/s")
    print(f"  corpus rolls on disk: {corpus_bytes / 1e6:.2f} MB (windows sliced on the fly, every frame a target)")
    print(
        f"  seed's float32 X+y windows: {seed_bytes / 1e6:.1f} MB ({result['memory_ratio']}x), "
        f"and {result['seed_windows_lost']} frames never a target"
    )


if __name__ == "__main__":
    main()
