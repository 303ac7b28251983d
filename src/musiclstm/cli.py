"""The `musiclstm` command: a thin layer that turns flags into API calls and results into text.

Flags default to None so that only what the user gave overrides the settings object's defaults.
User errors (`MusicLSTMError`) are caught once here, printed as `musiclstm: error: ...`, exit 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from musiclstm import CorpusConfig, MusicLSTMError, __version__, build_corpus
from musiclstm.config import DEFAULT_SEED, DEFAULT_STEPS_PER_BEAT, SPLITS


def add_data_command(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "data",
        help="turn MIDI files, the Bach chorales or a benchmark file into a piano-roll corpus",
        description="Read a source into a piano-roll corpus folder (manifest.json + bit-packed rolls). "
        "Unreadable files are skipped and listed with their reason. Re-running on an unchanged source "
        "with the same settings reuses the corpus.",
    )
    parser.add_argument(
        "--source",
        required=True,
        help="'bach' (the chorales in music21's corpus), a folder of .mid/.midi files "
        "(searched recursively), or a benchmark file (.pickle/.pkl/.json with "
        "train/valid/test; its split is kept)",
    )
    parser.add_argument("--out", required=True, help="the corpus folder to write")
    parser.add_argument(
        "--steps-per-beat",
        type=int,
        help=f"grid steps per quarter note (default {DEFAULT_STEPS_PER_BEAT} for MIDI and "
        "scores; benchmark files are taken as sampled, 1 per beat)",
    )
    parser.add_argument("--seed", type=int, help=f"seed of the split by piece (default {DEFAULT_SEED})")
    parser.add_argument(
        "--split",
        type=float,
        nargs=3,
        metavar=("TRAIN", "VALID", "TEST"),
        dest="split_fractions",
        help="split fractions by piece (default 0.70 0.15 0.15)",
    )
    parser.add_argument("--workers", type=int, help="processes reading files in parallel (default 1)")
    parser.add_argument("--limit", type=int, help="read only the first N files (sorted), for a quick try")
    parser.add_argument("--force", action="store_true", help="rebuild even if the corpus is up to date")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(run=run_data)


def given(args: argparse.Namespace, *names: str) -> dict:
    """The options among `names` that the user actually gave."""
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def run_data(args: argparse.Namespace) -> int:
    config = CorpusConfig(args.source, **given(args, "steps_per_beat", "seed", "split_fractions", "workers", "limit"))
    summary = build_corpus(config, args.out, force=args.force, progress=not args.json)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


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
    skipped = summary["skipped"]
    lines.append(f"  skipped {len(skipped)} of {summary['files_read']} files" if skipped else "  skipped none")
    lines += [f"    {entry['name']}: {entry['reason']}" for entry in skipped]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="musiclstm",
        description="Learn polyphonic music from MIDI piano rolls with a two-layer LSTM, and compose.",
    )
    parser.add_argument("--version", action="version", version=f"musiclstm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_data_command(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 2 a user error)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.run(args)
    except MusicLSTMError as err:
        print(f"musiclstm: error: {err}", file=sys.stderr)
        return 2


def main_entry() -> None:
    sys.exit(main())
