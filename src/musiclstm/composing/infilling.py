"""Rewrite bars inside a piece: draw the gap again and keep the drafts that lead into the music after it.

A piece is read as events (steps, 176: the keys sounding, then the keys struck; `reading.as_events`)
on its own metre. The gap is steps [start, end), from bars counted from 1 on that metre (a pickup is
bar 1) or from steps; everything outside it is the piece's own, unchanged. The model reads left to
right, so the gap is drawn as a continuation of the music before it, `particles` drafts side by side;
then each draft reads the first `join_steps` real steps after the gap and is weighed by the model's
likelihood of them after that draft (the steps' keys and, with a strike head, which held keys are
struck again: exact under the model), and each piece keeps a draft drawn by those weights. Nothing
inside the gap is known, so the drafts are not weighed there: each is drawn as generate draws. The
join's NLL, the model's nats per step of those real steps given the piece up to them, says how well
a gap leads on.

With `keep_melody`, the gap's top line is kept and the voices below it drawn again, under
harmonize's limits (`melody.melody_limits`), and the drafts are weighed and drawn again at
each step of the gap by the melody's note there, as harmonize's lookahead does (docs: infill). All of
it is a `loop.StepPlan` run by the one step loop; nothing here writes a file.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musiclstm.composing.composer import (
    Composer,
    Composition,
    check_path_or_none,
    draw_rules,
    file_tempo,
    for_model,
    read_bytes,
    set_up,
    warn_if_identical,
    warn_if_one_draft,
)
from musiclstm.composing.loop import StepPlan, compose, struck_after
from musiclstm.composing.melody import (
    MAX_PARTICLE_STEPS,
    MAX_PARTICLES,
    line_roll,
    melody_limits,
    melody_nll,
    melody_strikes,
)
from musiclstm.config import (
    INFILL_JOIN_STEPS,
    INFILL_PARTICLES,
    N_KEYS,
    GenerationSettings,
    MusicLSTMError,
    check_whole_number,
)
from musiclstm.music.grid import COMMON_TIME, Grid
from musiclstm.music.piece import Piece, top_line
from musiclstm.network.model import MusicLSTM, cpu_autocast
from musiclstm.network.reading import (
    WINDOWS_PER_BATCH,
    StatefulReader,
    as_events,
    encode,
    open_reader,
    with_lead_in,
)

log = logging.getLogger(__name__)

MAX_JOIN_STEPS = 1_024  # real steps after the gap that weigh the drafts


RANGE_EXAMPLES = {"bars": "5-8", "steps": "64-128"}


def parse_span(text: str, what: str) -> tuple[int, int]:
    """'5-8' (or '5') as (5, 8): the two whole numbers of a span the user typed, `what` naming it in errors."""
    written = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", str(text))
    if written is None:
        example = RANGE_EXAMPLES.get(what, "5-8")
        raise MusicLSTMError(
            f"{what} {text!r}: a badly written range; write two whole numbers, FIRST-LAST, like {example}"
        )
    first, last = written.groups()
    return int(first), int(last or first)


def check_span(what: str, span: object) -> tuple[int, int] | None:
    """A gap given as bars or steps: None, a "5-8" string (`parse_span`), or a pair of whole numbers, as a pair
    of ints; anything else (5, (5,), {5, 8}, (5, 8, 9), ("5", "8"), (5.5, 8)) refused by `what`."""
    if span is None:
        return None
    if isinstance(span, str):
        return parse_span(span, what)
    example = RANGE_EXAMPLES.get(what, "5-8")
    if not isinstance(span, tuple | list) or len(span) != 2 or not all(is_whole(number) for number in span):
        raise MusicLSTMError(
            f"{what} must be a range written like {example!r} or a pair of whole numbers like "
            f"({example.replace('-', ', ')}), got {span!r}"
        )
    return span[0], span[1]


def is_whole(value: object) -> bool:
    """Whether `value` is a whole number (an int, not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def gap_steps(
    piece: Piece, bars: tuple[int, int] | None = None, steps: tuple[int, int] | None = None
) -> tuple[int, int]:
    """The gap's steps [start, end) in a piece: `bars` (first, last) from 1, both included, on the piece's
    metre (`Piece.bar_lines`); or `steps` (start, end), from 0, the end left out. Exactly one of the two.

    Raises:
        MusicLSTMError: neither or both given, an empty gap, a gap outside the piece, or a gap with no
            music after it (that is a continuation, for `generate --primer`).
    """
    if (bars is None) == (steps is None):
        raise MusicLSTMError("give the gap as bars (5-8, from 1) or as steps (64-128, from 0, the end left out)")
    n_steps = piece.n_steps
    bars, steps = check_span("bars", bars), check_span("steps", steps)
    if bars is not None:
        first, last = bars
        named, bounds = f"bars {first}-{last}", piece.bar_lines()
        n_bars = len(bounds) - 1
        if not (1 <= first <= n_bars and 1 <= last <= n_bars):
            raise MusicLSTMError(f"{named}: outside the piece, whose bars are 1-{n_bars}")
        if last < first:
            raise MusicLSTMError(f"{named}: an empty gap; the first bar comes first (5-8)")
        start, end = int(bounds[first - 1]), int(bounds[last])
    else:
        start, end = steps
        named = f"steps {start}-{end}"
        if not (0 <= start <= n_steps and 0 <= end <= n_steps):
            raise MusicLSTMError(f"{named}: outside the piece, whose steps are 0-{n_steps} (the end left out)")
        if end <= start:
            raise MusicLSTMError(f"{named}: an empty gap; the end (left out) comes after the start (64-128)")
    if not piece.roll[end:].any():
        raise MusicLSTMError(
            f"{named}: no music after the gap, so nothing to join; that is a continuation: "
            "use 'musiclstm generate --primer' on the music before it"
        )
    return start, end


def step_nll(model: MusicLSTM, features: torch.Tensor, events: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """-log p(a step's events (..., 176) | the features, the keys sounding the step before (..., 88)), float64
    (...): the keys and the held keys struck again with a strike head, the keys alone without one."""
    targets = torch.cat([events, previous], dim=-1).float()
    nll = model.event_nll(features, targets)
    return model.frame_nll(features, targets) if nll is None else nll


def join_log_likelihood(model: MusicLSTM, given: torch.Tensor, n_gap: int):
    """The step loop's weight of a draft at step `n_gap + i`: log p(the given real step i (176,) | the draft's
    past), float64 (particles,), its strikes completed after each draft's last keys as the loop reads them."""

    def log_likelihood(features: torch.Tensor, step: int, previous: torch.Tensor) -> torch.Tensor:
        events = struck_after(given[step - n_gap].expand(len(features), -1), previous)
        return -step_nll(model, features, events, previous)

    return log_likelihood


@torch.inference_mode()
def read_before(
    model: MusicLSTM, events: np.ndarray, start: int, context: str, grid: Grid, precision: str = "32"
) -> StatefulReader | None:
    """The piece's events (steps, 176) before step `start` read once, in context `stateful`, under `precision`:
    a reader of one row whose state every draft and every join's scoring go on from (`StatefulReader.fork`).
    None in context `window`, where a step's prediction needs only the `window` steps before it."""
    if context != "stateful":
        return None
    with cpu_autocast(precision):
        return open_reader(model, events[None, :start], context, 1, grid)


def join_features(
    model: MusicLSTM, pieces: torch.Tensor, context: str, grid: Grid, start: int, n_steps: int, carried
) -> torch.Tensor:
    """The features that predict steps [start, start + n_steps) of pieces (pieces, steps, 176), each from the
    steps before it: (pieces, n_steps, dense_units). Context `stateful` reads on from `carried` (the steps
    before its position, shared by the pieces; None: from step 0), `window` only the `window` steps before
    each: the work grows with the steps after the carried state, not with the piece."""
    inputs, end = model.config.inputs, start + n_steps - 1  # the last step read predicts step `end`
    if context == "stateful":
        if carried is None:
            carried = open_reader(model, pieces[:1, :0], context, 1, grid)
        reader = carried.fork(len(pieces))
        first = reader.position
        features = [reader.features[:, None]]
        if end > first:
            rows = encode(pieces[:, first:end], first, inputs, grid)
            features.append(model(rows, reader.state, every_step=True)[0])
        return torch.cat(features, dim=1)[:, start - first :]
    window = model.config.window
    first = start - window  # the position of the first window's first step (a negative one is the lead-in's)
    span = with_lead_in(pieces[:, max(first, 0) : end].float().numpy(), max(0, -first))
    rows = encode(span, first, inputs, grid)  # (pieces, window + n_steps - 1, width)
    windows = rows.unfold(1, window, 1).transpose(2, 3).reshape(-1, window, rows.shape[-1])
    features = torch.cat([model(batch)[0] for batch in windows.split(WINDOWS_PER_BATCH)])
    return features.view(len(pieces), n_steps, -1)


@torch.inference_mode()
def join_nlls(
    model: MusicLSTM,
    pieces: np.ndarray,
    context: str,
    grid: Grid,
    start: int,
    n_steps: int,
    carried: StatefulReader | None = None,
) -> list[float]:
    """The model's NLL of the `n_steps` steps from `start` of each of pieces' events (pieces, steps, 176), given
    the piece before them: nats per step (see `step_nll`). `carried` (context `stateful`) is the pieces' shared
    steps before its position already read (`read_before`), so only the steps after it are read."""
    pieces = torch.as_tensor(np.asarray(pieces)[:, : start + n_steps])
    features = join_features(model, pieces, context, grid, start, n_steps, carried)
    silent = torch.zeros(len(pieces), 1, N_KEYS, dtype=torch.bool)  # what sounds before a piece's first step
    previous = torch.cat([silent, pieces[..., :N_KEYS]], dim=1)[:, start : start + n_steps]
    return step_nll(model, features, pieces[:, start:], previous).mean(dim=1).tolist()


def join_nll(
    model: MusicLSTM,
    events: np.ndarray,
    context: str,
    grid: Grid,
    start: int,
    n_steps: int,
    carried: StatefulReader | None = None,
) -> float:
    """The model's NLL of the `n_steps` steps of a piece's events (steps, 176) from `start`, given the piece
    before them: nats per step (`join_nlls` of one piece)."""
    return join_nlls(model, np.asarray(events)[None], context, grid, start, n_steps, carried)[0]


def melody_plan(roll: np.ndarray, onsets: np.ndarray, start: int, end: int, n_steps: int) -> dict:
    """Harmonize's limits for the gap's top line: its key forced (struck where the piece strikes it or the
    line moves), nothing above it; the join's steps free. StepPlan fields of `n_steps` rows."""
    line = top_line(roll)
    line, struck_line = line[start:end], melody_strikes(line, onsets)[start:end]
    if not (line >= 0).any():
        raise MusicLSTMError(f"steps {start}-{end}: the gap is silent, so it has no melody to keep")
    forced, below = melody_limits(line)
    free = n_steps - len(line)
    forced = torch.cat([forced, torch.zeros(free, N_KEYS, dtype=torch.bool)])
    below = torch.cat([below, torch.ones(free, N_KEYS, dtype=torch.bool)])
    struck = torch.cat([torch.from_numpy(struck_line), torch.zeros(free, dtype=torch.bool)])
    return dict(forced=forced, may_sound=below, struck=forced & struck[:, None])


def infill_events(
    model: MusicLSTM,
    events: np.ndarray,
    gap: tuple[int, int],
    settings: GenerationSettings,
    context: str,
    keys: list[str],
    particles: int = INFILL_PARTICLES,
    join_steps: int = INFILL_JOIN_STEPS,
    grid: Grid = COMMON_TIME,
    keep_melody: bool = False,
    progress: bool = False,
    melody_weighed: bool = True,
    carried: StatefulReader | None = None,
) -> np.ndarray:
    """Rewrite steps [start, end) of a piece's events (steps, 176) `settings.num_outputs` times; return the
    pieces' events (num_outputs, steps, 176), every step outside the gap the piece's own.

    The step loop's plan: the music before the gap as the primer; the gap drawn under the settings'
    rules, `particles` drafts per piece; then the first `join_steps` real steps after the gap read by
    every draft, each weighed by its log-likelihood (`step_nll`), and one draft per piece drawn by the
    weights. A key of the piece's that starts to sound after a draft's last step is struck there.
    With `keep_melody` (and `melody_weighed`), the drafts are also weighed and drawn again before each
    step of the gap but the first by the kept melody's note there, as harmonize's lookahead does.
    `carried` is the music before the gap already read (`read_before`, under the settings' precision), so
    that it is not read again (None: it is read here, once for every draft).
    """
    settings = for_model(settings, model)
    start, end = gap
    events = np.asarray(events, dtype=bool)
    n_gap, n_join = end - start, min(join_steps, len(events) - end)
    given = torch.from_numpy(events[end : end + n_join])
    weigh_join = join_log_likelihood(model, given, n_gap)
    weighed, resampled, limits = range(n_gap, n_gap + n_join), [n_gap + n_join - 1], {}
    if keep_melody:
        limits = melody_plan(events[:, :N_KEYS], events[:, N_KEYS:], start, end, n_gap + n_join)
    if keep_melody and melody_weighed:
        forced, below = limits["forced"], limits["may_sound"]

        def weigh(features: torch.Tensor, step: int, previous: torch.Tensor) -> torch.Tensor:
            if step < n_gap:
                return -melody_nll(model, features, step, forced, below, previous)
            return weigh_join(features, step, previous)

        weighed, resampled = range(1, n_gap + n_join), [*range(1, n_gap), n_gap + n_join - 1]
    plan = StepPlan(
        settings.num_outputs,
        n_gap + n_join,
        draw_rules(settings, keys),
        n_particles=particles,
        log_likelihood=weigh if keep_melody and melody_weighed else weigh_join,
        weighed=weighed,
        resampled=resampled,
        given=given,
        **limits,
    )
    progress_name = "infilling" if progress else None
    if carried is None:
        carried = read_before(model, events, start, context, grid, settings.precision)
    drawn = compose(
        model,
        events[:start],
        context,
        plan,
        settings.seed,
        settings.precision,
        progress_name,
        grids=grid,
        carried=carried,
    )
    pieces = np.broadcast_to(events, (settings.num_outputs, *events.shape)).copy()
    pieces[:, start:end] = drawn[:, :n_gap].numpy()
    return as_events(pieces[..., :N_KEYS], pieces[..., N_KEYS:])


def check_particles(versions: int, particles: int, steps: int) -> None:
    """Refuse an infill whose drafts (versions x particles) or draft-steps are over harmonize's caps."""
    drafts = versions * particles
    if drafts > MAX_PARTICLES or drafts * steps > MAX_PARTICLE_STEPS:
        raise MusicLSTMError(
            f"num_outputs x particles = {versions} x {particles} = {drafts:,} drafts of {steps:,} steps, over the "
            f"limit of {MAX_PARTICLES:,} drafts and {MAX_PARTICLE_STEPS:,} draft-steps: use fewer of either"
        )


def infill(
    piece: str | Path,
    model: str | Path | Composer | None = None,
    bars: tuple[int, int] | str | None = None,
    steps: tuple[int, int] | str | None = None,
    piece_name: str | None = None,
    particles: int = INFILL_PARTICLES,
    join_steps: int = INFILL_JOIN_STEPS,
    keep_melody: bool = False,
    progress: bool = False,
    **settings,
) -> Composition:
    """Rewrite bars inside a MIDI file with a trained model, keeping the rest of the piece as it is.

    Args:
        piece: a MIDI file, read on the model's grid with its own metre.
        model: a run or model folder, or a Composer (None: the bundled model).
        bars: the gap as (first, last) or "5-8": bars from 1 on the piece's metre (a pickup is bar 1), both
            included. Give this or `steps`.
        steps: the gap as (start, end) or "64-128": steps from 0, the end left out.
        piece_name: how to name the piece in records and errors (default: its path).
        particles: drafts of the gap drawn side by side per version, one kept by how likely the model
            finds the real music after it (with `choose` sample; by threshold all would be the same, so one
            is drawn), 1 to 256; at most 1,024 with the versions.
        join_steps: real steps after the gap that weigh the drafts, 1 to MAX_JOIN_STEPS (fewer where the
            piece ends sooner).
        keep_melody: keep the gap's top line and draw the voices below it again (harmonize's limits).
        **settings: fields of GenerationSettings but `length` (the gap's); `key` auto (the default) takes the
            piece's own, and `tempo_bpm`, when not given, is the file's own at its start (its tempo map written
            back as it is); given, the file's tempo map is written scaled to start at it.

    Returns:
        A Composition of whole pieces, its `gap` the steps rewritten, its settings with the join's NLL of
        each piece (`join_nll`, nats per step), and the file's bytes (`source_midi`): `save_pieces` writes
        that file back with only the gap's notes replaced (`music.splice`).

    Raises:
        MusicLSTMError: a bad model, file, gap or setting, all checked before composing.
    """
    if not isinstance(piece, str | os.PathLike):
        raise MusicLSTMError(f"piece must be a MIDI file's path, got {piece!r}")
    check_path_or_none("piece_name", piece_name, "a name (str) for the piece, or None (its path)")
    check_whole_number("particles", particles, 1, 256)
    check_whole_number("join_steps (--join)", join_steps, 1, MAX_JOIN_STEPS)
    if not isinstance(keep_melody, bool):
        raise MusicLSTMError(f"keep_melody must be True or False, got {keep_melody!r}")
    if "length" in settings:
        raise MusicLSTMError("length: an infill's length is its gap's; give bars or steps")
    bars, steps = check_span("bars", bars), check_span("steps", steps)
    if (bars is None) == (steps is None):
        raise MusicLSTMError("give the gap as bars (5-8, from 1) or as steps (64-128, from 0, the end left out)")
    setup = set_up(model, settings, length=1)  # settings checked before any work
    name = piece_name or str(piece)
    read = setup.read(piece, name, "infill")
    source_midi = read_bytes(piece, name)
    start, end = gap_steps(read, bars, steps)
    decided, tempo_from = {"length": end - start}, {}
    if "tempo_bpm" not in settings:
        decided["tempo_bpm"], tempo_from["tempo_from"] = file_tempo(read, "the piece's tempo at its start")
    setup = replace(setup, options=replace(setup.options, **decided))
    options = setup.options
    drafts = particles if options.choose == "sample" else 1  # by threshold, every draft would be the same
    n_join = min(join_steps, read.n_steps - end)
    check_particles(options.num_outputs, drafts, end - start + n_join)
    warn_if_identical(options, "the music around the gap")
    warn_if_one_draft(options, particles, "drafts of the gap", "particles")
    particles = drafts
    outside = np.delete(read.roll, np.s_[start:end], axis=0)
    keys = setup.keys(outside)
    model, context = setup.model, setup.context
    carried = read_before(model, read.events, start, context, read.grid, options.precision)  # once, for all
    made = infill_events(
        setup.model,
        read.events,
        (start, end),
        options,
        setup.context,
        keys,
        particles,
        join_steps,
        read.grid,
        keep_melody,
        progress,
        carried=carried,
    )
    if options.precision != "32":  # the join is scored in float32, as every NLL is
        carried = read_before(model, read.events, start, context, read.grid)
    joins = [round(nll, 4) for nll in join_nlls(model, made, context, read.grid, end, n_join, carried)]
    record = dict(
        infilled=name,
        gap_steps=[start, end],
        gap_bars=list(bars) if bars is not None else None,
        particles=particles,
        join_steps=n_join,
        join_nll=joins,
        keep_melody=keep_melody,
        **tempo_from,
        reading=read.reading.changes(),
    )
    melody = None
    if keep_melody:
        melody = np.zeros_like(read.roll)
        melody[start:end] = line_roll(read.steps(start, end).top_line())
    names, grids = [name] * options.num_outputs, [read.grid] * options.num_outputs
    return setup.compose(
        made,
        grids,
        start,
        names,
        keys,
        judged_until=end,
        melody=melody,
        gap=(start, end),
        source_midi=source_midi,
        record=record,
    )
