"""Benchmark harmonizing: Bach's sopranos of held-out chorales, harmonized by a model, set beside Bach's own.

For each piece of a split of `Jsb16thSeparated.json` (SATB at sixteenths, -1 where a voice rests) the
soprano is the melody. For each setting (strategy, lookahead) it reports, pooled over all steps:
- notes per step of the harmonizations (Bach: about 4), and the in-key rate (the share of notes in
  each piece's best-fitting major or minor scale, as `evaluate` counts it);
- chord match: the share of Bach's sounding steps where the harmonization's pitch classes are Bach's;
- seconds per piece.
And once, for the model: the NLL of Bach's three lower voices given the soprano and the past, nats
per frame (exact for a NADE head ordered high-to-low), beside the NLL of Bach's whole frames.

    .venv/bin/python benchmarks/bench_harmonize.py --model runs/jsb16_nade \\
        --data jsb/Jsb16thSeparated.json --split test --picture docs/harmonize_jsb.png

Asserts nothing; run it alone (two cores).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from musiclstm.composing.generation import for_model, open_composer, piece_keys
from musiclstm.composing.harmonization import harmonize_rolls
from musiclstm.composing.melody import line_roll, melody_limits
from musiclstm.config import HARMONIZE_LOOKAHEAD, N_KEYS, GenerationSettings
from musiclstm.music.grid import Grid
from musiclstm.music.metrics import best_key_rate, pitch_class_counts
from musiclstm.music.piece import top_line
from musiclstm.music.render import draw_roll
from musiclstm.network.bundle import cpu_name
from musiclstm.network.reading import as_events, piece_features

LOWEST_PITCH = 21


def voices_roll(steps: list[list[float]], voices: slice = slice(None)) -> np.ndarray:
    """SATB steps (pitch or -1 per voice) as a roll (steps, 88)."""
    roll = np.zeros((len(steps), 88), dtype=bool)
    for step, pitches in enumerate(steps):
        for pitch in pitches[voices]:
            if pitch >= 0:
                roll[step, int(pitch) - LOWEST_PITCH] = True
    return roll


def pitch_classes(frame: np.ndarray) -> frozenset[int]:
    return frozenset(int(key + LOWEST_PITCH) % 12 for key in np.flatnonzero(frame))


def chord_matches(made: np.ndarray, bach: np.ndarray) -> tuple[int, int]:
    """(steps where the pitch classes equal Bach's, Bach's sounding steps)."""
    sounding = bach.any(axis=1)
    same = sum(pitch_classes(a) == pitch_classes(b) for a, b in zip(made[sounding], bach[sounding], strict=True))
    return same, int(sounding.sum())


@torch.inference_mode()
def lower_voices_nll(model, bach: np.ndarray, soprano: np.ndarray, context: str) -> tuple[float, float]:
    """(NLL of the lower voices given the soprano and the past, NLL of the whole frames), summed over steps."""
    features = torch.cat(list(piece_features(model, as_events(bach), context)))
    key_nll = model.head.key_nll(features, torch.from_numpy(bach).float())  # (steps, 88)
    forced, below = melody_limits(soprano)
    melody_part = (~below | forced).numpy()  # the soprano's key and everything above it
    whole = key_nll.sum().item()
    return whole - key_nll.numpy()[melody_part].sum(), whole


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a run folder trained at 4 steps per beat")
    parser.add_argument("--data", required=True, help="Jsb16thSeparated.json")
    parser.add_argument("--split", default="test")
    parser.add_argument("--strategies", nargs="+", default=["balanced", "free"])
    parser.add_argument("--lookaheads", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--versions", type=int, default=1, help="harmonizations per piece and setting")
    parser.add_argument("--limit", type=int, help="only the first LIMIT pieces")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--picture", help="a PNG of the first piece: Bach's harmonization above, the model's below")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    composer = open_composer(args.model)
    model, context = composer.model.eval(), composer.run_config["context"]
    pieces = json.load(open(args.data))[args.split][: args.limit]
    bachs = [voices_roll(piece) for piece in pieces]
    sopranos = [top_line(voices_roll(piece, slice(0, 1))) for piece in pieces]
    scored = [lower_voices_nll(model, bach, soprano, context) for bach, soprano in zip(bachs, sopranos, strict=True)]
    lower, whole = (sum(nll) for nll in zip(*scored, strict=True))
    frames = sum(len(b) for b in bachs)
    result = {
        "cpu": cpu_name(),
        "model": args.model,
        "pieces": len(pieces),
        "bach_notes_per_step": float(np.mean(np.concatenate([b.sum(1) for b in bachs]))),
        "bach_in_key": float(np.mean([best_key_rate(b) for b in bachs])),
        "lower_voices_nll": lower / frames,
        "frame_nll": whole / frames,
        "settings": [],
    }
    pictured = None
    for strategy in args.strategies:
        for lookahead in args.lookaheads:
            settings = for_model(
                GenerationSettings(strategy=strategy, num_outputs=args.versions, seed=args.seed), model
            )
            made, started = [], time.perf_counter()
            for soprano in sopranos:
                keys = piece_keys(line_roll(soprano), settings)
                events = harmonize_rolls(model, soprano, settings, context, keys, lookahead)
                made.append(events[..., :N_KEYS])
            seconds = (time.perf_counter() - started) / len(sopranos)
            matched = np.sum(
                [chord_matches(roll, b) for rolls, b in zip(made, bachs, strict=True) for roll in rolls], 0
            )
            every = [roll for rolls in made for roll in rolls]
            result["settings"].append(
                {
                    "strategy": strategy,
                    "choose": settings.choose,
                    "lookahead": lookahead,
                    "notes_per_step": float(np.mean(np.concatenate([roll.sum(1) for roll in every]))),
                    "in_key": float(np.mean([best_key_rate(roll) for roll in every])),
                    "chord_match": float(matched[0] / matched[1]),
                    "pitch_class_kl_vs_bach": kl(every, bachs),
                    "seconds_per_piece": round(seconds, 3),
                }
            )
            if pictured is None or (strategy, lookahead) == (GenerationSettings().strategy, HARMONIZE_LOOKAHEAD):
                pictured = (strategy, lookahead, made[0][0])  # the package's defaults, where they were run
    if args.picture:
        draw(bachs[0], pictured, sopranos[0], args.picture)
    print(json.dumps(result) if args.json else table(result))


def kl(made: list[np.ndarray], bachs: list[np.ndarray]) -> float:
    p, q = pitch_class_counts(np.concatenate(made)) + 1, pitch_class_counts(np.concatenate(bachs)) + 1
    p, q = p / p.sum(), q / q.sum()
    return float((p * np.log(p / q)).sum())


def draw(bach: np.ndarray, pictured: tuple, soprano: np.ndarray, path: str) -> None:
    """Bach's harmonization above, the model's of the same soprano below, the soprano in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    strategy, lookahead, made = pictured
    figure, axes = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    draw_roll(axes[0], bach, Grid(4), title="Bach's harmonization (held out)", melody=line_roll(soprano))
    title = f"musiclstm's harmonization of the same soprano ({strategy}, lookahead {lookahead})"
    draw_roll(axes[1], made, Grid(4), title=title, melody=line_roll(soprano))
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def table(result: dict) -> str:
    lines = [
        f"{result['pieces']} pieces, {result['cpu']}; Bach: {result['bach_notes_per_step']:.2f} notes per step, "
        f"in key {result['bach_in_key']:.3f}",
        f"NLL of Bach's lower voices given the soprano: {result['lower_voices_nll']:.3f} nats per frame "
        f"(whole frames: {result['frame_nll']:.3f})",
        f"{'strategy':<10} {'choose':<10} {'lookahead':>9} {'notes':>6} {'in key':>7} {'chord match':>12} "
        f"{'KL':>6} {'s/piece':>8}",
    ]
    for row in result["settings"]:
        lines.append(
            f"{row['strategy']:<10} {row['choose']:<10} {row['lookahead']:>9} {row['notes_per_step']:>6.2f} "
            f"{row['in_key']:>7.3f} {row['chord_match']:>12.3f} {row['pitch_class_kl_vs_bach']:>6.3f} "
            f"{row['seconds_per_piece']:>8.2f}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
