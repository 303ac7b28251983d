"""Harmonize a melody: keep its line on top and let the model draw the voices below it, step by step.

The melody is the top line of a MIDI file: the highest key sounding at each step on the model's grid
(`top_line`, -1 where nothing sounds), from the bar of its first note: whole bars of silence before it are
left out. At every step where it sounds, its key is forced on and every key above it forced off; at a
rest, nothing may sound above its last note, and before its first note nothing sounds. The melody
file's tempo is the pieces' unless one is given. The model draws the rest
under the usual rules (temperature, key mask, threshold or sample, cap). A NADE head ordered
high-to-low decides the melody's key and the silence above it first, so the voices below are drawn
exactly from p(voices below | melody, past); the independent head draws them beside it.

The model reads left to right and cannot hear the melody's next note. `lookahead` > 1 runs that many
harmonizations of each version side by side (particles) and, before each step, resamples them by
how likely the model finds the melody's note there after each one's past: a particle filter that
keeps the pasts which lead where the melody goes. With `threshold` every particle is the same, so
it helps only with `sample`. Particles cost time and memory in proportion, so their number, and
their number times the melody's steps, are capped (MAX_PARTICLES, MAX_PARTICLE_STEPS). All of it is
a `composing.StepPlan` (the melody forced, the keys above it kept silent, the melody's NLL as the
particles' weights) run by the one step loop.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musiclstm.composing.composer import (
    Composer,
    Composition,
    Setup,
    check_path_or_none,
    draw_rules,
    file_tempo,
    for_model,
    read_bytes,
    set_up,
    warn_if_identical,
    warn_if_one_draft,
)
from musiclstm.composing.loop import StepPlan, compose
from musiclstm.composing.melody import (
    MAX_PARTICLE_STEPS,
    MAX_PARTICLES,
    line_roll,
    melody_limits,
    melody_nll,
    melody_strikes,
)
from musiclstm.config import (
    HARMONIZE_LOOKAHEAD,
    MAX_LENGTH,
    GenerationSettings,
    MusicLSTMError,
    check_whole_number,
)
from musiclstm.music.grid import COMMON_TIME, Grid
from musiclstm.music.piece import Piece
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import EVENT_WIDTH

log = logging.getLogger(__name__)

MAX_LOOKAHEAD = 256  # particles per version


def harmonize_rolls(
    model: MusicLSTM,
    line: np.ndarray,
    settings: GenerationSettings,
    context: str,
    keys: list[str],
    lookahead: int = HARMONIZE_LOOKAHEAD,
    progress: bool = False,
    struck: np.ndarray | None = None,
    grid: Grid = COMMON_TIME,
) -> np.ndarray:
    """Harmonize a top line (steps,) `settings.num_outputs` times; return the events (num_outputs, steps, 176).

    The step loop's plan: the melody's key forced and the keys above it kept silent at every step, the
    melody's key struck where the melody strikes it (`struck` (steps,) bool; None: where it changes),
    `lookahead` particles per version weighed, before every step but the first, by the melody's note there.
    """
    settings = for_model(settings, model)
    forced, below = melody_limits(line)
    if struck is None:
        struck = melody_strikes(line)
    plan = StepPlan(
        settings.num_outputs,
        len(line),
        draw_rules(settings, keys),
        forced=forced,
        may_sound=below,
        struck=forced & torch.from_numpy(np.asarray(struck, dtype=bool))[:, None],
        n_particles=lookahead,
        log_likelihood=lambda features, step, previous: -melody_nll(model, features, step, forced, below, previous),
        weighed=range(1, len(line)),
    )
    silence = np.zeros((1, 0, EVENT_WIDTH), dtype=bool)
    progress_name = "harmonizing" if progress else None
    events = compose(model, silence, context, plan, settings.seed, settings.precision, progress_name, grids=grid)
    return events.numpy()


def read_melody(setup: Setup, melody: str | Path, name: str, length: int | None) -> tuple[Piece, int]:
    """The melody file from the bar of its first note, cut to `length` steps when given; a warning for each
    thing left out. The piece keeps the file's metre and tempo map from that bar, whose step is returned with it.

    Raises:
        MusicLSTMError: the file cannot be read, holds no note on the keyboard, or none within `length`.
    """
    read = setup.read(melody, name, "harmonize")
    sounding = np.flatnonzero(read.roll.any(axis=1))
    place, _ = read.grid.place_in_bar(sounding[:1])
    first_bar = max(0, int(sounding[0] - place[0]))
    if first_bar:
        bars = len([line for line in read.grid.bar_starts(first_bar) if line < first_bar])
        log.warning(
            "%s: the melody's first note is at step %s; the %s silent steps (%s bars) before its bar are left out",
            name,
            f"{sounding[0]:,}",
            f"{first_bar:,}",
            f"{bars:,}",
        )
    tune = read.steps(first_bar)
    if length is not None and length > tune.n_steps:
        log.warning("%s: length %s is past the melody's end: cut to %s steps", name, f"{length:,}", f"{tune.n_steps:,}")
    tune = tune.steps(0, min(length, tune.n_steps)) if length is not None else tune
    if not tune.roll.any():
        raise MusicLSTMError(f"{name}: no notes in the first {length:,} steps (from step {first_bar:,}) to harmonize")
    if tune.n_steps > MAX_LENGTH:
        raise MusicLSTMError(
            f"{name}: {tune.n_steps:,} steps long, over the {MAX_LENGTH:,} steps harmonize takes: give a length"
        )
    return replace(tune, tempos=((0, read.tempo_at(int(sounding[0]))),)), first_bar


def check_particles(versions: int, lookahead: int, steps: int) -> None:
    """Refuse a harmonization whose particles (versions x lookahead) or particle-steps are over their caps."""
    particles = versions * lookahead
    if particles > MAX_PARTICLES:
        raise MusicLSTMError(
            f"num_outputs x lookahead = {versions} x {lookahead} = {particles:,} particles, over the limit of "
            f"{MAX_PARTICLES:,} (each step of 1,024 takes about 1.5 s and 300 MB): use fewer of either"
        )
    if particles * steps > MAX_PARTICLE_STEPS:
        raise MusicLSTMError(
            f"{particles:,} particles (num_outputs x lookahead) x {steps:,} steps = {particles * steps:,} "
            f"particle-steps, over the limit of {MAX_PARTICLE_STEPS:,} (about an hour and 200 MB): "
            "use fewer versions, a smaller lookahead or a shorter length"
        )


def harmonize(
    melody: str | Path,
    model: str | Path | Composer | None = None,
    melody_name: str | None = None,
    lookahead: int = HARMONIZE_LOOKAHEAD,
    progress: bool = False,
    **settings,
) -> Composition:
    """Harmonize the top line of a MIDI file with a trained model.

    Whole bars of silence before the melody's first note are left out, and `length` counts from there;
    a warning says what was left out (those bars, notes off the keyboard, a `length` past the end).

    Args:
        melody: a MIDI file; its highest note at each step is the melody.
        model: a run or model folder, or a Composer (None: the bundled model).
        melody_name: how to name the melody in records and errors (default: its path).
        lookahead: harmonizations drawn side by side per version and resampled by the melody's next note
            (with `choose` sample; by threshold they would all be the same, so one is drawn), 1 to MAX_LOOKAHEAD;
            at most MAX_PARTICLES with the versions, and MAX_PARTICLE_STEPS with the melody's steps too.
        **settings: fields of GenerationSettings; `key` auto (the default) takes the melody's own,
            `length`, when given, harmonizes only the melody's first `length` steps, and `tempo_bpm`, when
            not given, is the melody file's own at its first note (brought within TEMPO_RANGE_BPM).

    Raises:
        MusicLSTMError: a bad model, melody file or setting; settings are checked before any work.
    """
    if not isinstance(melody, str | os.PathLike):
        raise MusicLSTMError(f"melody must be a MIDI file's path, got {melody!r}")
    check_path_or_none("melody_name", melody_name, "a name (str) for the melody, or None (its path)")
    check_whole_number("lookahead", lookahead, 1, MAX_LOOKAHEAD)
    length = settings.pop("length", None)
    setup = set_up(model, settings, length=1 if length is None else length)  # settings checked before any work
    name = melody_name or str(melody)
    tune, first_bar = read_melody(setup, melody, name, length)
    decided, tempo_from = {"length": tune.n_steps}, {}
    if "tempo_bpm" not in settings:
        decided["tempo_bpm"], tempo_from["tempo_from"] = file_tempo(tune, "the melody's tempo at its first note")
    setup = replace(setup, options=replace(setup.options, **decided))
    options = setup.options
    particles = lookahead if options.choose == "sample" else 1  # by threshold, every particle would be the same
    check_particles(options.num_outputs, particles, tune.n_steps)
    warn_if_identical(options, "one melody")
    warn_if_one_draft(options, lookahead, "harmonizations of each version", "lookahead")
    lookahead = particles
    line = tune.top_line()
    melody_only = line_roll(line)
    keys = setup.keys(melody_only)
    events = harmonize_rolls(
        setup.model,
        line,
        options,
        setup.context,
        keys,
        lookahead,
        progress,
        melody_strikes(line, tune.onsets),
        tune.grid,
    )
    grids = [tune.grid] * options.num_outputs
    names = [name] * options.num_outputs
    record = dict(harmonized=name, lookahead=lookahead, **tempo_from, reading=tune.reading.changes())
    source = dict(source_midi=read_bytes(melody, name), source_step=first_bar)
    return setup.compose(events, grids, 0, names, keys, melody=melody_only, record=record, **source)
