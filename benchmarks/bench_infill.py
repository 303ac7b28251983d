"""Benchmark infilling: blank bars 5-8 of held-out chorales, rewrite them, and judge the gap and its join.

For each held-out piece of 12 bars or more (the test split of the model's own corpus, or of
`Jsb16thSeparated.json` at sixteenths in 4/4 with `--jsb`), bars 5-8 are rewritten with the model
(one version per piece) for each number of drafts K (`--particles`; 1 is a plain continuation,
nothing weighed) and join length L (`--joins`, real steps after the gap that weigh the drafts).
It reports:
- the join: the model's NLL of Bach's real bars 9-12 given the piece with the rewritten gap, nats per
  step, beside the same given Bach's own bars 5-8;
- the gap: notes per step, onsets per step and in-key rate (in each gap's best-fitting major or minor
  scale), and the two-sample accuracy of the gaps against Bach's bars 5-8 (one 4-bar passage each;
  0.5: indistinguishable);
- seconds per infill.

    .venv/bin/python benchmarks/bench_infill.py --particles 1 4 16 64 --joins 4 16 32 --picture docs/infill.png
    .venv/bin/python benchmarks/bench_infill.py --jsb ../shared/data/jsb/Jsb16thSeparated.json

Asserts nothing; run it alone (two cores). `--threads 1` where another job shares the cores: torch's
threads then wait on each other (one LSTM step took 30 ms instead of 1 ms beside a training run).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from musiclstm.composing.composer import for_model, open_composer, piece_keys
from musiclstm.composing.infilling import infill_events, join_nll
from musiclstm.config import INFILL_JOIN_STEPS, INFILL_PARTICLES, N_KEYS, GenerationSettings
from musiclstm.data.corpus import load_corpus
from musiclstm.judging.two_sample import two_sample_test
from musiclstm.music.grid import Grid
from musiclstm.music.metrics import best_key_rate
from musiclstm.music.piece import Piece, onsets_of
from musiclstm.music.render import draw_roll
from musiclstm.network.bundle import cpu_name
from musiclstm.network.reading import as_events

GAP_BARS = (5, 8)
JOIN_BARS = (9, 12)


def jsb_pieces(path: str, split: str) -> list[tuple[str, np.ndarray, np.ndarray | None, Grid]]:
    """The pieces of a split of a JSB file of SATB steps (pitch or -1 per voice): (name, roll, None, 4/4)."""
    pieces = []
    for number, steps in enumerate(json.load(open(path))[split]):
        roll = np.zeros((len(steps), N_KEYS), dtype=bool)
        for step, pitches in enumerate(steps):
            for pitch in pitches:
                if pitch >= 0:
                    roll[step, int(pitch) - 21] = True
        pieces.append((f"{split} {number}", roll, None, Grid(4)))
    return pieces


def corpus_pieces(composer, split: str) -> list[tuple[str, np.ndarray, np.ndarray | None, Grid]]:
    """The pieces of a split of the model's own corpus: (name, roll, onsets, metre)."""
    return [(piece.name, piece.roll, piece.onsets, piece.grid) for piece in load_corpus(composer.corpus).split(split)]


def spans(grid: Grid, n_steps: int) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The steps of bars 5-8 and of bars 9-12 (from 1, a pickup as bar 1); None for a piece shorter than 12 bars."""
    bounds = Piece(np.zeros((n_steps, 88), dtype=bool), grid=grid).bar_lines()
    if len(bounds) - 1 < JOIN_BARS[1] or not bounds[JOIN_BARS[1]] <= n_steps:
        return None
    gap = int(bounds[GAP_BARS[0] - 1]), int(bounds[GAP_BARS[1]])
    return gap, (gap[1], int(bounds[JOIN_BARS[1]]))


def chord_match(gaps: list[np.ndarray], bachs: list[np.ndarray]) -> float:
    """The share of Bach's sounding steps where a gap sounds exactly Bach's pitch classes (as bench_harmonize)."""
    classes = (np.arange(N_KEYS) % 12 == np.arange(12)[:, None]).astype(int)  # (12, 88): the keys of each class
    same = total = 0
    for gap, bach in zip(gaps, bachs, strict=True):
        sounding = bach.any(axis=1)
        same += int(((gap[sounding] @ classes.T > 0) == (bach[sounding] @ classes.T > 0)).all(axis=1).sum())
        total += int(sounding.sum())
    return same / max(total, 1)


def gap_figures(gaps: list[np.ndarray], bachs: list[np.ndarray], grids: list[Grid]) -> dict:
    """Notes and onsets per step and in-key rate of the gaps, and their two-sample accuracy against Bach's bars
    and the share of steps sounding Bach's chord (pitch classes)."""
    onsets = [onsets_of(gap).sum() / len(gap) for gap in gaps]
    return {
        "chord_match": chord_match(gaps, bachs),
        "notes_per_step": float(np.mean([gap.sum(1).mean() for gap in gaps])),
        "onsets_per_step": float(np.mean(onsets)),
        "in_key": float(np.nanmean([best_key_rate(gap) or np.nan for gap in gaps])),
        "two_sample_accuracy": two_sample_test(bachs, gaps, grids[0])["accuracy"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a run or model folder (default: the bundled model)")
    parser.add_argument("--jsb", help="Jsb16thSeparated.json: its split instead of the model's corpus's")
    parser.add_argument("--split", default="test")
    parser.add_argument("--particles", nargs="+", type=int, default=[1, INFILL_PARTICLES])
    parser.add_argument("--joins", nargs="+", type=int, default=[INFILL_JOIN_STEPS])
    parser.add_argument("--strategy", default="balanced")
    parser.add_argument(
        "--keep-melody",
        action="store_true",
        help="keep the gap's top line; the drafts weighed in the gap by it (harmonize's lookahead) and not",
    )
    parser.add_argument("--limit", type=int, help="only the first LIMIT pieces of 12 bars or more")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--picture", help="a PNG of the first piece: Bach's bars 5-8 above, the defaults' below")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    composer = open_composer(args.model)
    model, context = composer.model.eval(), composer.run_config.get("context", "window")
    found = jsb_pieces(args.jsb, args.split) if args.jsb else corpus_pieces(composer, args.split)
    pieces = [(name, roll, onsets, grid, spans(grid, len(roll))) for name, roll, onsets, grid in found]
    pieces = [piece for piece in pieces if piece[4] is not None][: args.limit]
    events = [as_events(roll, onsets) for _, roll, onsets, _, _ in pieces]
    bachs = [roll[gap[0] : gap[1]] for _, roll, _, _, (gap, _) in pieces]
    gap_grids = [grid.shifted(gap[0]) for _, _, _, grid, (gap, _) in pieces]

    def join_of(piece_events, piece) -> float:
        _, _, _, grid, (gap, join) = piece
        return join_nll(model, piece_events, context, grid, join[0], join[1] - join[0])

    result = {
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "model": str(composer.folder),
        "data": args.jsb or f"{composer.corpus} ({args.split})",
        "pieces": len(pieces),
        "bach_join_nll": float(np.mean([join_of(e, p) for e, p in zip(events, pieces, strict=True)])),
        "bach": dict(
            gap_figures(bachs, bachs, gap_grids),
            two_sample_accuracy=two_sample_test(bachs[::2], bachs[1::2], gap_grids[0])["accuracy"],  # for scale
        ),
        "settings": [],
    }
    pictured = None
    melody_weighings = (True, False) if args.keep_melody else (False,)
    runs = [
        (particles, join_steps, melody_weighed)
        for particles in args.particles
        for join_steps in (args.joins if particles > 1 else args.joins[:1])  # one draft: nothing is weighed
        for melody_weighed in (melody_weighings if particles > 1 else (False,))
    ]
    for particles, join_steps, melody_weighed in runs:
        settings = for_model(GenerationSettings(strategy=args.strategy, seed=args.seed), model)
        gaps, joins, started = [], [], time.perf_counter()
        for piece_events, piece in zip(events, pieces, strict=True):
            _, roll, _, grid, (gap, _) = piece
            outside = np.delete(roll, np.s_[gap[0] : gap[1]], axis=0)
            keys = piece_keys(outside, settings)
            made = infill_events(
                model,
                piece_events,
                gap,
                settings,
                context,
                keys,
                particles,
                join_steps,
                grid,
                args.keep_melody,
                melody_weighed=melody_weighed,
            )[0]
            joins.append(join_of(made, piece))
            gaps.append(made[gap[0] : gap[1], :N_KEYS])
        seconds = (time.perf_counter() - started) / len(pieces)
        row = {"particles": particles, "join_steps": join_steps if particles > 1 else None}
        row.update(keep_melody=args.keep_melody, melody_weighed=melody_weighed)
        row.update(join_nll=float(np.mean(joins)), **gap_figures(gaps, bachs, gap_grids), seconds=seconds)
        result["settings"].append(row)
        print(json.dumps(row), flush=True)
        if (particles, join_steps) == (INFILL_PARTICLES, INFILL_JOIN_STEPS) or pictured is None:
            pictured = (particles, join_steps, gaps[0])
    if args.picture:
        draw(pieces[0], bachs[0], pictured, args.picture)
    print(json.dumps(result) if args.json else table(result))


def draw(piece: tuple, bach: np.ndarray, pictured: tuple, path: str) -> None:
    """Bars 1-12 of a piece: Bach's bars 5-8 above, the rewritten ones below, the gap shaded in both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    name, roll, _, grid, (gap, join) = piece
    particles, join_steps, made = pictured
    rewritten = roll[: join[1]].copy()
    rewritten[gap[0] : gap[1]] = made
    figure, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    draw_roll(axes[0], roll[: join[1]], grid, title=f"{name} (held out), bars 1-12: Bach's bars 5-8", gap=gap)
    title = f"bars 5-8 rewritten by musiclstm ({particles} drafts, weighed by {join_steps} steps after them)"
    draw_roll(axes[1], rewritten, grid, title=title, gap=gap)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def number(value: float | None) -> str:
    """A two-sample accuracy to two places; '-' where there were too few pieces to cross-validate."""
    return "-" if value is None else f"{value:.2f}"


def in_the_gap(row: dict) -> str:
    """What the gap's drafts were: free, or the melody kept (and weighed by it at each step, or not)."""
    if not row["keep_melody"]:
        return "free"
    return "melody kept, weighed by it" if row["melody_weighed"] else "melody kept"


def table(result: dict) -> str:
    bach = result["bach"]
    lines = [
        f"{result['pieces']} pieces of {result['data']}, {result['cpu']}, {result['threads']} thread(s)",
        f"Bach's bars 5-8: join NLL {result['bach_join_nll']:.3f}, {bach['notes_per_step']:.2f} notes and "
        f"{bach['onsets_per_step']:.2f} onsets per step, in key {bach['in_key']:.3f}, "
        f"two-sample accuracy of half of them against the other half {number(bach['two_sample_accuracy'])}",
        "| drafts K | join L | in the gap | join NLL (bars 9-12) | vs Bach's | notes/step | onsets/step | in key "
        "| two-sample acc. | chord match | s per infill |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in result["settings"]:
        lines.append(
            f"| {row['particles']} | {row['join_steps'] or '-'} | {in_the_gap(row)} | {row['join_nll']:.3f} | "
            f"{row['join_nll'] / result['bach_join_nll'] - 1:+.1%} | {row['notes_per_step']:.2f} | "
            f"{row['onsets_per_step']:.2f} | {row['in_key']:.3f} | {number(row['two_sample_accuracy'])} | "
            f"{row['chord_match']:.3f} | "
            f"{row['seconds']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
