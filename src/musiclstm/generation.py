"""Compose: run a trained model forward one step at a time, its head drawing each step's notes.

A piece is its primer (the steps it opens with) followed by `length` generated steps, a bool roll of
shape (primer steps + length, 88). The model reads `window` steps of silence before the primer (the
lead-in, as in training). Each step: the model's features -> its head draws a frame under the
`DrawRules` (temperature, key mask, threshold or sample, top-k fallback, cap) -> append. A reader
keeps the context: `stateful` carries the LSTM state, one step of work per step; `window` predicts
each step from the last `window` steps alone, as the seed's loop does. All `num_outputs` pieces
are generated together as one batch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import (
    AUTO_KEY,
    BEATS_PER_BAR,
    HEAD_CHOICE,
    KEY_NAMES,
    N_KEYS,
    GenerationSettings,
    MusicLSTMError,
    key_root,
)
from musiclstm.corpus import Corpus, load_corpus
from musiclstm.dataset import allowed_shifts, shift_keys
from musiclstm.heads import DrawRules
from musiclstm.metrics import best_root, music_statistics
from musiclstm.model import MusicLSTM, cpu_autocast
from musiclstm.novelty import COPY_WARNING_BARS, PassageHashes, copies_bars, novelty
from musiclstm.reading import open_reader
from musiclstm.roll import MAX_ROLL_STEPS, midi_to_roll
from musiclstm.run import load_model, model_folder, read_run_config
from musiclstm.sampling import scale_mask

log = logging.getLogger(__name__)

QUIET_START_NOTES = 3  # notes in the one-step primer used when there is nothing else to start from
QUIET_START_KEYS = slice(27, 52)  # MIDI 48-72, the octaves around middle C


@dataclass(frozen=True)
class Composition:
    """Generated pieces: `rolls` (num_outputs, primer_steps + length, 88) bool, the primer first."""

    rolls: np.ndarray
    primer_steps: int
    steps_per_beat: int
    settings: dict  # the GenerationSettings used, with the strategy's temperature and scale filled in
    primer_sources: tuple[str, ...]  # where each piece's primer came from
    keys: tuple[str, ...]  # each piece's key (a root; its scale is in settings)
    melody: np.ndarray | None = None  # (steps, 88) bool: the melody a harmonization keeps on top
    novelty: tuple[dict, ...] | None = None  # each piece's `novelty.novelty` against the training pieces


@dataclass(frozen=True)
class Composer:
    """A trained model opened for composing: load it once, compose with it many times."""

    folder: Path
    model: MusicLSTM
    run_settings: dict  # the folder's config.json

    @property
    def steps_per_beat(self) -> int:
        return self.run_settings["data"]["steps_per_beat"]

    @property
    def steps_per_bar(self) -> int:
        return BEATS_PER_BAR * self.steps_per_beat

    @property
    def corpus(self) -> Path:
        """The model's corpus folder; a relative path lies inside the model folder (as in the bundled model)."""
        return self.folder / self.run_settings["data"]["corpus"]

    @cached_property
    def training_passages(self) -> tuple[PassageHashes, list[str]] | None:
        """The hashed passages of the model's training pieces and their names, built once; None where the
        corpus is gone or holds no train split (a model folder exported before the train split was kept)."""
        try:
            pieces = load_corpus(self.corpus).split("train")
        except MusicLSTMError:
            return None
        return (PassageHashes([piece.roll for piece in pieces]), [piece.name for piece in pieces]) if pieces else None


def settings_record(options: GenerationSettings, context: str, composer: Composer, **more) -> dict:
    """What a composition records of how it was made: the settings with the strategy's temperature and
    scale filled in, the context and the model, and `more`."""
    return dict(
        options.to_dict(),
        context=context,
        temperature=options.effective_temperature,
        scale=options.effective_scale,
        model=str(composer.folder),
        **more,
    )


def with_novelty(composition: Composition, composer: Composer) -> Composition:
    """The composition with each piece's novelty against the model's training pieces (the primer left out);
    a warning for each piece that copies COPY_WARNING_BARS bars or more. Unchanged where the training
    pieces are not at hand."""
    if composer.training_passages is None:
        return composition
    training, names = composer.training_passages
    bar = composition.steps_per_beat * BEATS_PER_BAR
    found = tuple(novelty(roll, training, names, bar, composition.primer_steps) for roll in composition.rolls)
    for number, entry in enumerate(found, start=1):
        if copies_bars(entry, COPY_WARNING_BARS):
            log.warning(
                "piece %d copies %g bars of the training piece %s (from its step %d)",
                number,
                entry["longest_shared_bars"],
                entry["source"],
                entry["source_step"],
            )
    return replace(composition, novelty=found)


def open_composer(model: str | Path | Composer | None = None) -> Composer:
    """Load the model in a run folder (None: the bundled model), ready to compose; a Composer passes through.

    Raises:
        MusicLSTMError: `model` is none of those, or the folder, its config or its weights are missing,
            damaged or do not match.
    """
    if isinstance(model, Composer):
        return model
    check_path_or_none("model", model, "a model folder, a Composer from open_composer, or None (the bundled model)")
    folder = model_folder(model)
    return Composer(folder, load_model(folder), read_run_config(folder))


def check_path_or_none(name: str, value: object, takes: str) -> None:
    """Refuse an argument that is neither a path (str or os.PathLike) nor None, saying what it takes."""
    if value is not None and not isinstance(value, str | os.PathLike):
        raise MusicLSTMError(f"{name} must be {takes}; got {value!r}")


def held_out_statistics(composer: Composer) -> dict | None:
    """The music statistics of the held-out pieces of the model's corpus; None where that corpus is gone."""
    try:
        corpus = load_corpus(composer.corpus)
    except MusicLSTMError:
        return None
    pieces = corpus.split("test") or corpus.split("valid")
    return music_statistics([piece.roll for piece in pieces], corpus.steps_per_beat) if pieces else None


def piece_keys(primers: np.ndarray, settings: GenerationSettings) -> list[str]:
    """Each piece's key: the one asked for, or for `auto` the root whose scale best fits the piece's primer.

    `primers` is one primer (steps, 88) shared by every piece, or one per piece (num_outputs, steps, 88).
    """
    if settings.key != AUTO_KEY:
        return [settings.key] * settings.num_outputs
    scale = settings.effective_scale or "chromatic"
    roots = (
        [best_root(primers, scale)] * settings.num_outputs
        if primers.ndim == 2
        else [best_root(primer, scale) for primer in primers]
    )
    return [settings.fixed_key if root is None else KEY_NAMES[root] for root in roots]


def for_model(settings: GenerationSettings, model: MusicLSTM) -> GenerationSettings:
    """The settings with the way of choosing notes filled in from the model's head where none was given."""
    return replace(settings, choose=settings.choose or HEAD_CHOICE[model.config.head])


def draw_rules(settings: GenerationSettings, keys: list[str]) -> DrawRules:
    """The rules each step is drawn by: the settings' temperature and choice, and each piece's key mask."""
    scale = settings.effective_scale
    return DrawRules(
        temperature=settings.effective_temperature,
        allowed=torch.stack([scale_mask(key, scale) for key in keys]) if scale else None,  # (batch, 88)
        choose=settings.choose,
        threshold=settings.threshold,
        top_k=settings.top_k,
        max_notes=settings.max_notes,
    )


@torch.inference_mode()
def compose_rolls(
    model: MusicLSTM,
    primers: np.ndarray,
    settings: GenerationSettings,
    context: str,
    keys: list[str] | None = None,
    progress: bool = False,
) -> np.ndarray:
    """Generate `settings.num_outputs` pieces from `primers`; return them, primer first.

    `primers` is one primer (steps, 88) shared by every piece, or one per piece (num_outputs, steps, 88);
    `keys` gives each piece's key (default: `piece_keys`); `progress` shows a bar of steps composed.
    """
    model.eval()
    settings = for_model(settings, model)
    batch, primers = settings.num_outputs, np.asarray(primers, dtype=bool)
    generator = torch.Generator().manual_seed(settings.seed)
    rules = draw_rules(settings, keys or piece_keys(primers, settings))
    rows = primers[None] if primers.ndim == 2 else primers  # one shared primer is read once
    with cpu_autocast(settings.precision):  # bf16 is refused here, before composing, where oneDNN lacks it
        reader = open_reader(model, rows, context, batch)
        steps = torch.empty(batch, settings.length, N_KEYS, dtype=torch.bool)
        for step in tqdm(range(settings.length), desc="composing", unit="step", disable=not progress):
            steps[:, step] = model.head.draw(reader.features, rules, generator)
            reader.read(steps[:, step].float())
    return np.concatenate([np.broadcast_to(rows, (batch, *rows.shape[1:])), steps.numpy()], axis=1)


def quiet_start(settings: GenerationSettings) -> np.ndarray:
    """One step per piece with QUIET_START_NOTES random in-key notes around middle C: a start that is not silence."""
    rng = np.random.default_rng(settings.seed)
    allowed = scale_mask(settings.fixed_key, settings.effective_scale or "chromatic").numpy()
    middle = np.flatnonzero(allowed[QUIET_START_KEYS]) + QUIET_START_KEYS.start
    primers = np.zeros((settings.num_outputs, 1, N_KEYS), dtype=bool)
    for primer in primers:
        primer[0, rng.choice(middle, QUIET_START_NOTES, replace=False)] = True
    return primers


def held_out_openings(corpus: Corpus, window: int, settings: GenerationSettings) -> tuple[np.ndarray, list[str]]:
    """A primer per piece: `window` steps from a bar line of a held-out piece, drawn by the seed.

    The pieces of a batch get different passages while there are enough to go round, so pieces chosen
    by threshold differ too. Raises LookupError when the corpus holds no held-out piece.
    """
    pieces = corpus.split("test") or corpus.split("valid")
    if not pieces:
        raise LookupError("no held-out piece")
    steps = min(window, max(piece.frames for piece in pieces))
    bar = BEATS_PER_BAR * corpus.steps_per_beat
    passages = [(piece, start) for piece in pieces for start in range(0, piece.frames - steps + 1, bar)]
    count = settings.num_outputs
    drawn = np.random.default_rng(settings.seed).choice(len(passages), size=count, replace=count > len(passages))
    chosen = [passages[i] for i in drawn]
    primers = np.stack([piece.roll[start : start + steps] for piece, start in chosen])
    return primers, [f"{piece.name}, steps {start}-{start + steps} (held out)" for piece, start in chosen]


def nearest_shift(roll: np.ndarray, interval: int) -> int | None:
    """The smallest move in semitones, up or down, that equals `interval` modulo 12 and keeps every note of
    `roll` (steps, 88) on the keyboard; None where none does."""
    fitting = [shift for shift in allowed_shifts(roll, 1 - N_KEYS, N_KEYS - 1) if shift % 12 == interval % 12]
    return min(fitting, key=abs, default=None)


def in_asked_key(primers: np.ndarray, sources: list[str], settings: GenerationSettings) -> tuple[np.ndarray, list]:
    """Held-out primers (num_outputs, steps, 88) moved into the key the user fixed, each source saying how.

    A passage keeps its own key, and under the asked key's mask the model would go on from music whose
    notes it may no longer play; so each moves by the nearest shift from the root whose scale fits it
    best (`best_root`) to the asked root. Unchanged for key `auto` or without a scale (no mask).
    """
    scale = settings.effective_scale
    if settings.key == AUTO_KEY or scale is None:
        return primers, sources
    moved, named = primers.copy(), list(sources)
    for number, primer in enumerate(primers):
        root = best_root(primer, scale)
        if root is None:
            continue
        shift = nearest_shift(primer, key_root(settings.key) - root)
        if shift is None:
            named[number] += f", left in {KEY_NAMES[root]} {scale} (no move to {settings.key} keeps it on the keyboard)"
        elif shift:
            moved[number] = shift_keys(primer, shift)
            named[number] += f", transposed {shift:+d} semitones from {KEY_NAMES[root]} {scale} to {settings.key}"
    return moved, named


def choose_primers(
    composer: Composer, primer: str | Path | None, settings: GenerationSettings, primer_name: str | None = None
) -> tuple[np.ndarray, list[str]]:
    """What each piece opens with: a MIDI file, else a held-out passage of the model's corpus, else a quiet start.

    Returns the primers, one per piece (num_outputs, steps, 88) or a MIDI file's one roll (steps, 88)
    shared by all, and for each piece where its primer came from (a held-out passage is moved into a
    fixed key: `in_asked_key`; a MIDI primer stays as it is); a MIDI primer is named
    `primer_name` (its path when None), in that list and in any error about it. A MIDI primer and
    the steps composed after it may be at most MAX_ROLL_STEPS long together, the most musiclstm reads.
    """
    count = settings.num_outputs
    if primer is not None:
        name = primer_name or str(primer)
        try:
            roll = midi_to_roll(primer, composer.steps_per_beat).roll
        except MusicLSTMError as error:
            raise MusicLSTMError(str(error).replace(str(primer), name)) from None
        if not roll.any():
            raise MusicLSTMError(f"{name}: no notes on the 88 keys to start from")
        if len(roll) + settings.length > MAX_ROLL_STEPS:
            raise MusicLSTMError(
                f"{name}: {len(roll):,} steps long at {composer.steps_per_beat} per beat; with {settings.length:,} "
                f"more, the pieces would be over the limit of {MAX_ROLL_STEPS:,} steps that musiclstm reads back"
            )
        return roll, [name] * count
    try:
        primers, sources = held_out_openings(load_corpus(composer.corpus), composer.model.config.window, settings)
    except (MusicLSTMError, LookupError):  # the corpus was moved, deleted or holds nothing held out
        return quiet_start(settings), ["a quiet start (random in-key notes)"] * count
    return in_asked_key(primers, sources, settings)


def generate(
    model: str | Path | Composer | None = None,
    primer: str | Path | None = None,
    primer_name: str | None = None,
    progress: bool = False,
    **settings,
) -> Composition:
    """Compose pieces with a trained model.

    Args:
        model: a run or model folder, or a Composer opened from one (to load it only once); None: the
            bundled model.
        primer: a MIDI file to start every piece from; None gives each piece its own passage of a held-out
            piece of the model's corpus (or, without one, a few random in-key notes).
        primer_name: how to name the primer in the pieces' records and in errors (default: its path).
        progress: show a progress bar of the steps composed.
        **settings: fields of GenerationSettings (length, strategy, temperature, key, scale, ...).

    Raises:
        MusicLSTMError: a bad model folder, primer or setting; settings are checked before any work.
    """
    try:
        options = GenerationSettings(**settings)
    except TypeError as err:  # a name that is not a setting
        raise MusicLSTMError(f"unknown generation setting: {err}") from None
    check_path_or_none("primer", primer, "a MIDI file's path, or None (a held-out passage of the model's corpus)")
    check_path_or_none("primer_name", primer_name, "a name (str) for the primer, or None (its path)")
    composer = open_composer(model)
    options = for_model(options, composer.model)
    context = options.context or composer.run_settings.get("context", "window")
    primers, primer_sources = choose_primers(composer, primer, options, primer_name)
    if primer is not None and options.num_outputs > 1 and options.choose == "threshold":
        log.warning(
            "choosing by threshold is deterministic: the %d pieces share one primer and will be the same; "
            "use --choose sample for different pieces",
            options.num_outputs,
        )
    keys = piece_keys(primers, options)
    rolls = compose_rolls(composer.model, primers, options, context, keys, progress)
    saved = settings_record(options, context, composer)
    composition = Composition(
        rolls, primers.shape[-2], composer.steps_per_beat, saved, tuple(primer_sources), tuple(keys)
    )
    return with_novelty(composition, composer)
