"""Compose step by step: the one loop that generate, harmonize and infill build on, and what they share.

A composition is `n_pieces` pieces of `n_steps` steps, each drawn as events (n_steps, 176: the keys
sounding, then the keys struck, `reading.as_events`) after a primer (the steps before it; none for a
harmonization) that the model reads after its lead-in, on each piece's metre (`Grid`). A builder
says what the steps obey in a `StepPlan`: the `DrawRules` (temperature, the choice rule of
`sampling`, threshold, top-k fallback, the cap, each piece's key mask as `allowed`) and, step by step,
keys `forced` on (and whether each is `struck` there) and keys that `may_sound` (every piece alike).
Each step the model's heads draw the keys and their strikes under them (`MusicLSTM.draw`) and the
reader reads them.

A piece may be drawn as `n_particles` particles side by side. Before the steps a builder names
(`weighed`), each particle's log weight grows by the log-likelihood the model gives, after that
particle's past, to what the builder knows of that step (harmonize: the melody's note there; infill:
the real music after the gap); before the steps it names `resampled`, each piece's particles are
drawn again by their weights (a particle filter) and their weights start again. Particles share
their pasts through `parents`, and `trace_back` follows each survivor back to its own past. With one
particle nothing is weighed or drawn again.

Here too: `Composer` (a model opened for composing), `Composition` (the pieces and their record),
and the helpers every builder uses (settings record, novelty, keys, draw rules, reading a MIDI
file). Nothing here writes a file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Container
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import AUTO_KEY, HEAD_CHOICE, KEY_NAMES, N_KEYS, GenerationSettings, MusicLSTMError
from musiclstm.data.corpus import load_corpus
from musiclstm.judging.novelty import COPY_WARNING_BARS, PassageHashes, copies_bars, novelty
from musiclstm.music.metrics import best_root
from musiclstm.music.roll import COMMON_TIME, Grid, ReadRoll, midi_to_roll
from musiclstm.network.heads import DrawRules
from musiclstm.network.model import MusicLSTM, cpu_autocast
from musiclstm.network.reading import EVENT_WIDTH, open_reader
from musiclstm.network.run import load_model, model_folder, read_run_config
from musiclstm.network.sampling import scale_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Composition:
    """Composed pieces: `rolls` (num_outputs, primer_steps + length, 88) bool, the primer first; `onsets`
    the keys struck at each step, the same shape (a key struck while it sounds starts a new note)."""

    rolls: np.ndarray
    onsets: np.ndarray
    primer_steps: int
    steps_per_beat: int
    settings: dict  # the GenerationSettings used, with the strategy's temperature and scale filled in
    primer_sources: tuple[str, ...]  # where each piece's primer came from
    keys: tuple[str, ...]  # each piece's key (a root; its scale is in settings)
    melody: np.ndarray | None = None  # (steps, 88) bool: the melody a harmonization keeps on top
    novelty: tuple[dict, ...] | None = None  # each piece's `novelty.novelty` against the training pieces
    grids: tuple[Grid, ...] | None = None  # each piece's metre (None: 4/4 from the first step)
    gap: tuple[int, int] | None = None  # an infill's rewritten steps [start, end); the rest is the piece's own

    def grid(self, number: int) -> Grid:
        """The metre of piece `number` (from 0)."""
        return self.grids[number] if self.grids else Grid(self.steps_per_beat)


@dataclass(frozen=True)
class Composer:
    """A trained model opened for composing: load it once, compose with it many times."""

    folder: Path
    model: MusicLSTM
    run_config: dict  # the folder's config.json

    @property
    def steps_per_beat(self) -> int:
        return self.run_config["data"]["steps_per_beat"]

    @property
    def grid(self) -> Grid:
        """The grid the model composes on: its steps per beat, in 4/4 from the first step."""
        return Grid(self.steps_per_beat)

    @property
    def steps_per_bar(self) -> int:
        return self.grid.steps_per_bar

    @property
    def corpus(self) -> Path:
        """The model's corpus folder; a relative path lies inside the model folder (as in the bundled model)."""
        return self.folder / self.run_config["data"]["corpus"]

    @cached_property
    def training_passages(self) -> tuple[PassageHashes, list[str]] | None:
        """The hashed passages of the model's training pieces and their names, built once; None where the
        corpus is gone or holds no train split (a model folder exported before the train split was kept)."""
        try:
            pieces = load_corpus(self.corpus).split("train")
        except MusicLSTMError:
            return None
        return (PassageHashes([piece.roll for piece in pieces]), [piece.name for piece in pieces]) if pieces else None


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


def read_music(path: str | Path, name: str, composer: Composer, purpose: str) -> ReadRoll:
    """A MIDI file read on the model's grid, errors naming it `name`; a warning counts notes off the keyboard.

    Raises:
        MusicLSTMError: the file cannot be read, or no note of it sounds on the 88 keys (nothing `to purpose`).
    """
    try:
        read = midi_to_roll(path, composer.steps_per_beat)
    except MusicLSTMError as error:
        raise MusicLSTMError(str(error).replace(str(path), name)) from None
    if read.n_off_keyboard:
        log.warning("%s: %d notes off the 88 keys (below A0 or above C8) are left out", name, read.n_off_keyboard)
    if not read.roll.any():
        raise MusicLSTMError(f"{name}: no notes on the 88 keys to {purpose}")
    return read


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
    bar = Grid(composition.steps_per_beat).steps_per_bar
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
        allowed=torch.stack([scale_mask(key, scale) for key in keys]) if scale else None,  # (pieces, 88)
        choose=settings.choose,
        threshold=settings.threshold,
        top_k=settings.top_k,
        max_notes=settings.max_notes,
    )


@dataclass(frozen=True)
class StepPlan:
    """What a builder asks of the loop: the steps, what each obeys, and how particles are weighed.

    `log_likelihood(features, step, previous)` takes the features that predict `step` (particles,
    dense_units) and the keys each particle sounds the step before (particles, 88) bool (whether a key
    held over can be struck again), and gives each particle's log p(what the builder knows of that
    step | its past), float64 (particles,); it is asked at the `weighed` steps. `resampled` names the
    steps before which each piece's particles are drawn again by their weights (None: the weighed
    ones). The `given` steps are known music every particle reads (infill: the real music after the
    gap, to weigh by): they obey no rule, not even the cap, and draw nothing from the generator; a
    given key that starts to sound after a particle's past is struck there, as every event has it.
    """

    n_pieces: int
    n_steps: int
    rules: DrawRules  # `allowed`: each piece's key mask (n_pieces, 88) or None; `forced` is not read
    forced: torch.Tensor | None = None  # (n_steps, 88) bool: keys that sound at each step, in every piece
    may_sound: torch.Tensor | None = None  # (n_steps, 88) bool: keys that may sound at each step (and forced ones)
    struck: torch.Tensor | None = None  # (n_steps, 88) bool: where a forced key sounds, whether it is struck there
    n_particles: int = 1
    log_likelihood: Callable[[torch.Tensor, int, torch.Tensor], torch.Tensor] | None = None
    weighed: Container[int] = ()
    resampled: Container[int] | None = None
    given: torch.Tensor | None = None  # (n_given, 176) bool events: the last n_given steps, read as they are

    def step_rules(self, step: int, key_masks: torch.Tensor | None, batch: int) -> DrawRules:
        """The rules of one step for `batch` particles, whose key masks are `key_masks` (batch, 88) or None."""
        if self.forced is None and self.may_sound is None:
            return replace(self.rules, allowed=key_masks)
        allowed = self.may_sound[step] if self.may_sound is not None else None
        if key_masks is not None:
            allowed = key_masks if allowed is None else key_masks & allowed
        forced = self.forced[step] if self.forced is not None else None
        if forced is not None and allowed is not None:
            allowed = allowed | forced
        return replace(
            self.rules,
            allowed=None if allowed is None else allowed.expand(batch, -1),
            forced=None if forced is None else forced.expand(batch, -1),
        )


def struck_after(events: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Events (batch, 176) with every key that starts to sound after `previous` (batch, 88) struck."""
    keys = events[:, :N_KEYS]
    return torch.cat([keys, events[:, N_KEYS:] | (keys & ~previous)], dim=-1)


def resample(log_weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Draw each piece's particles again by weight: log_weights (pieces, particles) -> the rows (pieces x particles,)
    of the batch to go on from, each piece's drawn from its own."""
    pieces, particles = log_weights.shape
    drawn = torch.multinomial(torch.softmax(log_weights, dim=1), particles, replacement=True, generator=generator)
    return (torch.arange(pieces)[:, None] * particles + drawn).flatten()


def trace_back(frames: list[torch.Tensor], parents: list[torch.Tensor | None], rows: torch.Tensor) -> torch.Tensor:
    """The pieces that end in `rows`, step by step back through the resamplings: (len(rows), steps, width).

    `frames[step]` (batch, width) is what each row drew at `step`; `parents[step]` the rows it went on
    from (None: the same rows). Following each particle's line back costs one step of work per step,
    where copying every particle's whole past at each resampling would cost a step per step already drawn.
    """
    pieces = torch.empty(len(rows), len(frames), frames[0].shape[-1] if frames else EVENT_WIDTH, dtype=torch.bool)
    for step in reversed(range(len(frames))):
        pieces[:, step] = frames[step][rows]
        if parents[step] is not None:
            rows = parents[step][rows]
    return pieces


@torch.inference_mode()
def compose(
    model: MusicLSTM,
    primers: np.ndarray,
    context: str,
    plan: StepPlan,
    seed: int,
    precision: str = "32",
    progress: str | None = None,
    every_particle: bool = False,
    grids: Grid | list[Grid] = COMMON_TIME,
) -> torch.Tensor:
    """Draw `plan.n_steps` steps after `primers` under the plan; return their events, bool (n_pieces, n_steps, 176).

    `primers` is one primer's events (steps, 176) or (1, steps, 176) shared by every piece, or one per
    piece (n_pieces, steps, 176); `grids` the metre of every piece, or one per piece; `seed` starts the
    one generator of every draw; `progress`, when given, names a bar of the steps drawn. Each piece is
    its first particle after the last resampling (`every_particle`: all of them, (n_pieces x
    n_particles, n_steps, 176), particle k of piece p at row p x n_particles + k).
    """
    model.eval()
    particles = plan.n_particles
    batch = plan.n_pieces * particles
    generator = torch.Generator().manual_seed(seed)
    rows = primers[None] if primers.ndim == 2 else primers
    if len(rows) > 1 and particles > 1:
        rows = rows.repeat(particles, axis=0)
    if not isinstance(grids, Grid) and len(grids) > 1 and particles > 1:
        grids = [grid for grid in grids for _ in range(particles)]
    previous = torch.as_tensor(rows[:, -1, :N_KEYS] if rows.shape[1] else np.zeros((1, N_KEYS), dtype=bool))
    previous = previous.bool().expand(batch, -1)  # the keys sounding before the step drawn
    key_masks = plan.rules.allowed
    if key_masks is not None and particles > 1:
        key_masks = key_masks.repeat_interleave(particles, dim=0)
    resampled = plan.weighed if plan.resampled is None else plan.resampled
    weighing = particles > 1 and plan.log_likelihood is not None
    log_weights = torch.zeros(batch, dtype=torch.float64)
    n_drawn = plan.n_steps - (0 if plan.given is None else len(plan.given))
    frames, parents = [], []  # each step's frames (batch, 88), and the rows it went on from (None: the same)
    with cpu_autocast(precision):  # bf16 is refused here, before composing, where oneDNN lacks it
        reader = open_reader(model, rows, context, batch, grids)
        for step in tqdm(range(plan.n_steps), desc=progress, unit="step", disable=progress is None):
            chosen = None
            if weighing and step in plan.weighed:
                log_weights = log_weights + plan.log_likelihood(reader.features, step, previous)
            if weighing and step in resampled:
                chosen = resample(log_weights.view(plan.n_pieces, particles), generator)
                reader.select(chosen)
                previous = previous[chosen]
                log_weights = torch.zeros(batch, dtype=torch.float64)
            if step >= n_drawn:
                frames.append(struck_after(plan.given[step - n_drawn].expand(batch, -1), previous))
            else:
                rules = plan.step_rules(step, key_masks, batch)
                struck = None if plan.struck is None else plan.struck[step].expand(batch, -1)
                frames.append(model.draw(reader.features, previous, rules, generator, struck))
            parents.append(chosen)
            previous = frames[-1][:, :N_KEYS]
            reader.read(frames[-1].float())
    survivors = torch.arange(batch) if every_particle else torch.arange(plan.n_pieces) * particles
    return trace_back(frames, parents, survivors)
