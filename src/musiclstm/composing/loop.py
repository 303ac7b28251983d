"""The step loop: draw a composition step by step, the one loop that generate, harmonize and infill build on.

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
particle nothing is weighed or drawn again. What the builders share before and after the loop is in
`composer`; nothing here reads or writes a file.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import N_KEYS
from musiclstm.music.grid import COMMON_TIME, Grid
from musiclstm.network.heads import DrawRules
from musiclstm.network.model import MusicLSTM, cpu_autocast
from musiclstm.network.reading import EVENT_WIDTH, StatefulReader, open_reader


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
        may_sound = self.may_sound[step] if self.may_sound is not None else None
        forced = self.forced[step] if self.forced is not None else None
        return limited(self.rules, key_masks, may_sound, forced, batch)


def limited(
    rules: DrawRules,
    key_masks: torch.Tensor | None,
    may_sound: torch.Tensor | None,
    forced: torch.Tensor | None,
    batch: int,
) -> DrawRules:
    """`rules` for one step of `batch` rows: only keys in their key masks (batch or 1, 88) and in `may_sound` (88,)
    may sound, and the `forced` keys (88,) sound whatever those say; None: no such limit."""
    allowed = may_sound
    if key_masks is not None:
        allowed = key_masks if allowed is None else key_masks & allowed
    if forced is not None and allowed is not None:
        allowed = allowed | forced
    return replace(
        rules,
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
    carried: StatefulReader | None = None,
) -> torch.Tensor:
    """Draw `plan.n_steps` steps after `primers` under the plan; return their events, bool (n_pieces, n_steps, 176).

    `primers` is one primer's events (steps, 176) or (1, steps, 176) shared by every piece, or one per
    piece (n_pieces, steps, 176); `grids` the metre of every piece, or one per piece; `seed` starts the
    one generator of every draw; `progress`, when given, names a bar of the steps drawn. Each piece is
    its first particle after the last resampling (`every_particle`: all of them, (n_pieces x
    n_particles, n_steps, 176), particle k of piece p at row p x n_particles + k). `carried`, in context
    `stateful`, is the one shared primer already read (a reader of one row, at its end, read under
    `precision`): every piece goes on from its state (`StatefulReader.fork`), the primer not read again,
    and `primers` gives only the keys sounding at its end.
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
        reader = open_reader(model, rows, context, batch, grids) if carried is None else carried.fork(batch, grids)
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
