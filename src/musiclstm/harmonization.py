"""Harmonize a melody: keep its line on top and let the model draw the voices below it, step by step.

The melody is the top line of a MIDI file: the highest key sounding at each step on the model's grid
(`top_line`, -1 where nothing sounds). At every step where it sounds, its key is forced on and every
key above it forced off; at a rest, nothing may sound above its last note. The model draws the rest
under the usual rules (temperature, key mask, threshold or sample, cap). A NADE head ordered
high-to-low decides the melody's key and the silence above it first, so the voices below are drawn
exactly from p(voices below | melody, past); the independent head draws them beside it.

The model reads left to right and cannot hear the melody's next note. `lookahead` > 1 runs that many
harmonizations of each version side by side (particles) and, before each step, resamples them by
how likely the model finds the melody's note there after each one's past: a particle filter that
keeps the pasts which lead where the melody goes. With `threshold` every particle is the same, so
it helps only with `sample`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import HARMONIZE_LOOKAHEAD, N_KEYS, GenerationSettings, MusicLSTMError
from musiclstm.dataset import with_lead_in
from musiclstm.generation import (
    Composition,
    draw_rules,
    for_model,
    open_composer,
    open_reader,
    piece_keys,
    settings_record,
    with_novelty,
)
from musiclstm.model import MusicLSTM
from musiclstm.roll import MAX_ROLL_STEPS, midi_to_roll, top_line


def line_roll(line: np.ndarray) -> np.ndarray:
    """A top line (steps,) as a roll (steps, 88) holding just its notes."""
    roll = np.zeros((len(line), N_KEYS), dtype=bool)
    sounding = np.flatnonzero(line >= 0)
    roll[sounding, line[sounding]] = True
    return roll


def melody_limits(line: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """What each step must obey: `forced` (steps, 88), the melody's key; `below` (steps, 88), the keys that may
    sound (at and under the melody's key; at a rest, under its last note; before its first, under its first)."""
    sounding = np.flatnonzero(line >= 0)
    if not sounding.size:
        raise MusicLSTMError("the melody has no notes")
    last = np.maximum.accumulate(np.where(line >= 0, np.arange(len(line)), -1))
    ceiling = np.where(last >= 0, line[np.maximum(last, 0)], line[sounding[0]])
    below = np.arange(N_KEYS)[None, :] <= ceiling[:, None]
    return torch.from_numpy(line_roll(line)), torch.from_numpy(below)


def melody_nll(model: MusicLSTM, features: torch.Tensor, step: int, forced: torch.Tensor, below: torch.Tensor):
    """-log p(the melody at `step`: its key on, the keys above it off | each row's past), shape (batch,).

    Exact for a NADE head ordered high-to-low and for the independent head; for a NADE head ordered
    low-to-high it conditions on silence below the melody, an approximation.
    """
    frames = forced[step].expand(len(features), -1).float()
    return model.head.key_nll(features, frames)[:, ~below[step] | forced[step]].sum(-1)


@torch.inference_mode()
def harmonize_rolls(
    model: MusicLSTM,
    line: np.ndarray,
    settings: GenerationSettings,
    context: str,
    keys: list[str],
    lookahead: int = HARMONIZE_LOOKAHEAD,
    progress: bool = False,
) -> np.ndarray:
    """Harmonize a top line (steps,) `settings.num_outputs` times; return the rolls (num_outputs, steps, 88)."""
    model.eval()
    settings = for_model(settings, model)
    versions, steps = settings.num_outputs, len(line)
    batch = versions * lookahead
    generator = torch.Generator().manual_seed(settings.seed)
    forced, below = melody_limits(line)
    rules = draw_rules(settings, keys)
    allowed = rules.allowed.repeat_interleave(lookahead, dim=0) if rules.allowed is not None else None
    silence = torch.from_numpy(with_lead_in(np.zeros((1, 0, N_KEYS), np.float32), model.config.window))
    reader = open_reader(model, silence, context, batch)
    frames, parents = [], []  # each step's frames (batch, 88), and the rows it went on from (None: the same)
    first_rows = torch.arange(versions)[:, None] * lookahead
    for step in tqdm(range(steps), desc="harmonizing", unit="step", disable=not progress):
        rows = None
        if lookahead > 1 and step > 0:
            weights = torch.softmax(-melody_nll(model, reader.features, step, forced, below).view(versions, -1), dim=1)
            rows = (first_rows + torch.multinomial(weights, lookahead, replacement=True, generator=generator)).flatten()
            reader.select(rows)
        may_sound = below[step] if allowed is None else allowed & below[step]
        step_rules = replace(
            rules, allowed=(may_sound | forced[step]).expand(batch, -1), forced=forced[step].expand(batch, -1)
        )
        frames.append(model.head.draw(reader.features, step_rules, generator))
        parents.append(rows)
        reader.read(frames[-1].float())
    return trace_back(frames, parents, first_rows.flatten()).numpy()


def trace_back(frames: list[torch.Tensor], parents: list[torch.Tensor | None], rows: torch.Tensor) -> torch.Tensor:
    """The pieces that end in `rows`, step by step back through the resamplings: (len(rows), steps, 88).

    Following each particle's line back costs one step of work per step, where copying every particle's
    whole past at each resampling would cost a step per step already drawn."""
    pieces = torch.empty(len(rows), len(frames), N_KEYS, dtype=torch.bool)
    for step in reversed(range(len(frames))):
        pieces[:, step] = frames[step][rows]
        if parents[step] is not None:
            rows = parents[step][rows]
    return pieces


def harmonize(
    melody: str | Path,
    model=None,
    melody_name: str | None = None,
    lookahead: int = HARMONIZE_LOOKAHEAD,
    progress: bool = False,
    **settings,
) -> Composition:
    """Harmonize the top line of a MIDI file with a trained model.

    Args:
        melody: a MIDI file; its highest note at each step is the melody.
        model: a run or model folder, or a Composer (None: the bundled model).
        melody_name: how to name the melody in records and errors (default: its path).
        lookahead: harmonizations drawn side by side per version and resampled by the melody's next note
            (with `choose` sample; by threshold they would all be the same, so one is drawn).
        **settings: fields of GenerationSettings; `key` auto (the default) takes the melody's own, and
            `length`, when given, harmonizes only the melody's first `length` steps.

    Raises:
        MusicLSTMError: a bad model, melody file or setting.
    """
    if not 1 <= lookahead <= 256:
        raise MusicLSTMError(f"lookahead must be between 1 and 256 particles, got {lookahead}")
    composer = open_composer(model)
    name = melody_name or str(melody)
    try:
        roll = midi_to_roll(melody, composer.steps_per_beat).roll
    except MusicLSTMError as error:
        raise MusicLSTMError(str(error).replace(str(melody), name)) from None
    roll = roll[: settings["length"]] if "length" in settings else roll
    if not roll.any():
        raise MusicLSTMError(f"{name}: no notes on the 88 keys to harmonize")
    if len(roll) > MAX_ROLL_STEPS:
        raise MusicLSTMError(f"{name}: {len(roll):,} steps long, over the {MAX_ROLL_STEPS:,} steps musiclstm writes")
    try:
        options = for_model(GenerationSettings(**dict(settings, length=len(roll))), composer.model)
    except TypeError as err:
        raise MusicLSTMError(f"unknown generation setting: {err}") from None
    line = top_line(roll)
    melody_only = line_roll(line)
    keys = piece_keys(melody_only, options)
    context = options.context or composer.run_settings.get("context", "window")
    lookahead = lookahead if options.choose == "sample" else 1  # by threshold, every particle would be the same
    rolls = harmonize_rolls(composer.model, line, options, context, keys, lookahead, progress)
    saved = settings_record(options, context, composer, harmonized=name, lookahead=lookahead)
    names = (name,) * options.num_outputs
    return with_novelty(
        Composition(rolls, 0, composer.steps_per_beat, saved, names, tuple(keys), melody_only), composer
    )
