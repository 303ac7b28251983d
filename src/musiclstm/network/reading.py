"""How the network reads a piece: the input encoder, the silence lead-in, and the two contexts.

A piece is read as events: (steps, 176) bool or float, each step the 88 keys sounding, then the 88
keys struck there (a note starting; a key struck again while it sounds starts a new note). `as_events`
makes them from a roll and its onsets. Each step has an absolute position: 0 is the piece's first
step, and the `window` steps of silence read before it (its lead-in, `with_lead_in`) are -window..-1;
a piece's `Grid` says where each position falls in its beat and bar, the lead-in's and the steps
composed past its end too. `encode` turns events, the position of the first and the grids into the
rows the network reads, float32 (steps, input_width), one `INPUT_FEATURES` entry after another as
the model's config names them (`ModelConfig.inputs`). Training's datasets, scoring
(`piece_features`) and composing (the readers) all read through it. `step_targets` gives what the
heads predict of each step: its events and the keys that sounded the step before.

A reader keeps one of the two contexts a model predicts in, for a batch of pieces composed step by
step: `StatefulReader` (context `stateful`: the LSTM state runs on through the whole piece) and
`WindowReader` (context `window`: each step predicted from the last `window` steps alone, from a
zero state). Both hold `features` (batch, dense_units), which predict the next step, `read(events)`
the step drawn, and `select(rows)` (go on with these rows of the batch, for particles). Nothing here
imports Lightning or reads a file.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from musiclstm.config import CONTEXTS, N_KEYS, ModelConfig, MusicLSTMError, check_one_of
from musiclstm.music.grid import COMMON_TIME, Grid
from musiclstm.music.piece import onsets_of

WINDOWS_PER_BATCH = 256  # windows scored per forward pass in context `window`
EVENT_WIDTH = 2 * N_KEYS  # a step's events: the keys sounding, then the keys struck
TARGET_WIDTH = 3 * N_KEYS  # a step's target: its events, then the keys sounding the step before
DEFAULT_INPUTS = ("keys",)  # what every model read before inputs were named
Grids = Grid | Sequence[Grid]  # one grid for every row of a batch, or one per row


def as_events(roll: np.ndarray, onsets: np.ndarray | None = None) -> np.ndarray:
    """Events (..., steps, 176) bool from a roll (..., steps, 88) and its struck keys (None: the keys
    turning on, all a roll alone can tell)."""
    roll = np.asarray(roll, dtype=bool)
    struck = onsets_of(roll) if onsets is None else np.asarray(onsets, dtype=bool) & roll
    return np.concatenate([roll, struck | onsets_of(roll)], axis=-1)


def metre_flags(grid: Grid, positions: np.ndarray) -> np.ndarray:
    """Where each position falls in the metre, (steps, 5) float32: it starts a bar, the second half of a
    bar of an even number of beats, a beat, an eighth, a sixteenth (all on the quarter-note beat)."""
    place, length = grid.place_in_bar(positions)
    beat = grid.steps_per_beat
    return np.stack(
        [
            place == 0,
            (length % (2 * beat) == 0) & (2 * place == length),
            place % beat == 0,
            (2 * place) % beat == 0,
            (4 * place) % beat == 0,
        ],
        axis=-1,
    ).astype(np.float32)


def beat_places(grid: Grid, positions: np.ndarray) -> np.ndarray:
    """Where each position falls, one-hot, (steps, 12) float32: its sixteenth of the beat (4 columns)
    and its beat of the bar (8 columns, the eighth beat and later sharing the last)."""
    place, _ = grid.place_in_bar(positions)
    beat = grid.steps_per_beat
    sixteenth = (place % beat) * 4 // beat
    beat_of_bar = np.minimum(place // beat, 7)
    columns = np.zeros((len(positions), 12), dtype=np.float32)
    columns[np.arange(len(positions)), sixteenth] = 1
    columns[np.arange(len(positions)), 4 + beat_of_bar] = 1
    return columns


def phrase_places(grid: Grid, positions: np.ndarray) -> np.ndarray:
    """How near each position's next step is to a marked phrase end, (steps, 5) float32: the next step lies
    in one (a fermata's chord), and the next phrase end begins within 1, 2, 3 or 4 beats after the position
    (one-hot; none further off). A piece without marks has zeros throughout, as the model read it in
    training where its source marked none."""
    columns = np.zeros((len(positions), 5), dtype=np.float32)
    columns[:, 0] = grid.phrase_end_flags(positions + 1)
    if grid.phrase_ends:
        firsts = np.array([first for first, _ in grid.phrase_ends], dtype=np.int64)
        following = np.searchsorted(firsts, positions, side="right")  # the first phrase end after each position
        ahead = np.where(following < len(firsts), firsts[np.minimum(following, len(firsts) - 1)] - positions, 0)
        beats = -(-ahead // grid.steps_per_beat)  # whole beats to go, rounded up
        near = (ahead > 0) & (beats <= 4)
        columns[np.flatnonzero(near), beats[near]] = 1
    return columns


def metre_columns(describe: Callable[[Grid, np.ndarray], np.ndarray], width: int):
    """An input's columns from each row's grid: (steps, width) for one grid, (rows, steps, width) for one per row."""

    def columns(events: torch.Tensor, positions: np.ndarray, grids: Grids) -> torch.Tensor:
        if isinstance(grids, Grid):
            table = describe(grids, positions)
        else:
            described = {grid: describe(grid, positions) for grid in set(grids)}  # a batch shares few grids
            table = np.stack([described[grid] for grid in grids])
        return torch.from_numpy(table).expand(*events.shape[:-1], width)

    return columns


@dataclass(frozen=True)
class InputFeature:
    """One input of the network: `width` columns per step, from the events and each step's place.

    `columns(events, positions, grids)` takes events float32 (..., steps, 176), positions int64
    (steps,) and the rows' grids, and returns float32 (..., steps, width).
    """

    width: int
    columns: Callable[[torch.Tensor, np.ndarray, Grids], torch.Tensor]


INPUT_FEATURES = {
    "keys": InputFeature(N_KEYS, lambda events, positions, grids: events[..., :N_KEYS]),  # the keys sounding
    "struck": InputFeature(N_KEYS, lambda events, positions, grids: events[..., N_KEYS:]),  # the keys struck
    "metre": InputFeature(12, metre_columns(beat_places, 12)),  # one-hot sixteenth of the beat and beat of the bar
    "metre-flags": InputFeature(5, metre_columns(metre_flags, 5)),  # bar, half bar, beat, eighth, sixteenth
    "phrase": InputFeature(5, metre_columns(phrase_places, 5)),  # the next step in a phrase end; beats to the next
}


def input_feature(name: str) -> InputFeature:
    """The input feature called `name`, refused with the known names when there is none."""
    if name not in INPUT_FEATURES:
        raise MusicLSTMError(f"unknown input '{name}': choose among {', '.join(INPUT_FEATURES)}")
    return INPUT_FEATURES[name]


def input_width(config: ModelConfig) -> int:
    """Columns of the rows a model with this config reads per step: its inputs' widths, summed."""
    return sum(input_feature(name).width for name in config.inputs)


def encode(
    events: np.ndarray | torch.Tensor, start: int, inputs: tuple[str, ...] = DEFAULT_INPUTS, grids: Grids = COMMON_TIME
) -> torch.Tensor:
    """The rows the network reads for events (..., steps, 176) whose first step is at position `start`.

    `grids` is the metre of every row, or one per row of a batch (..., steps, 176) of one leading
    dimension. Returns float32 (..., steps, width): the `inputs` named (a model's `config.inputs`) side by side.
    """
    events = torch.as_tensor(events).to(torch.float32)
    if events.shape[-1] != EVENT_WIDTH:
        raise MusicLSTMError(f"events must have {EVENT_WIDTH} columns (keys sounding, keys struck), got {events.shape}")
    positions = np.arange(start, start + events.shape[-2])
    columns = [input_feature(name).columns(events, positions, grids) for name in inputs]
    return columns[0] if len(columns) == 1 else torch.cat(columns, dim=-1)


def step_targets(events: torch.Tensor) -> torch.Tensor:
    """What the heads predict of steps 1.. of events (..., steps, 176): (..., steps - 1, 264), each step's
    events then the keys sounding the step before (whether a sounding key can be struck again)."""
    return torch.cat([events[..., 1:, :], events[..., :-1, :N_KEYS]], dim=-1)


def with_lead_in(frames: np.ndarray, silent_steps: int) -> np.ndarray:
    """Frames (..., steps, width) after `silent_steps` steps of silence.

    Every piece is read after `window` steps of silence (its lead-in) in training, evaluation and
    composing alike, so its first frame is predicted from silence and a model never sees a piece
    start mid-context.
    """
    padding = [(0, 0)] * (np.ndim(frames) - 2) + [(silent_steps, 0), (0, 0)]
    return np.pad(frames, padding)


def read_with_lead_in(primer: np.ndarray | torch.Tensor, config: ModelConfig, grids: Grids) -> torch.Tensor:
    """A primer's events (..., steps, 176) encoded after its lead-in: (..., window + steps, input_width)."""
    window = config.window
    return encode(with_lead_in(np.asarray(primer, dtype=np.float32), window), -window, config.inputs, grids)


def as_batch(tensor: torch.Tensor, batch: int, dim: int = 0) -> torch.Tensor:
    """`tensor`, whose size along `dim` is 1 or `batch`, as `batch` rows of its own."""
    return tensor.expand(*tensor.shape[:dim], batch, *tensor.shape[dim + 1 :]).contiguous()


def batch_grids(grids: Grids, batch: int) -> Grids:
    """One grid for every row, or a grid per row of the batch (a list of 1 shared by all)."""
    if isinstance(grids, Grid):
        return grids
    grids = list(grids)
    if len(grids) == 1:
        return grids[0]
    if len(grids) != batch:
        raise MusicLSTMError(f"{len(grids)} grids for a batch of {batch}")
    return grids


class StatefulReader:
    """Context `stateful`: the LSTM state runs on through the whole piece, one step of work per step.

    The primer's events (1 or batch, steps, 176) are read after its lead-in. A primer of one row
    shared by the batch's pieces is read once and its state copied, so a long primer costs the same
    for one piece as for 256; `fork` carries a one-row reader's state on to a batch later, so that a
    primer read once serves several compositions and scorings. `position` is the absolute position of
    the next step read; `grids` the metre of every piece (one Grid) or of each.
    """

    def __init__(
        self, model: torch.nn.Module, primer: np.ndarray | torch.Tensor, batch: int, grids: Grids = COMMON_TIME
    ):
        self.model, self.grids = model, batch_grids(grids, batch)
        features, state = model(read_with_lead_in(primer, model.config, grids_of_primer(self.grids, primer)))
        self.position = np.shape(primer)[-2]
        self.features = as_batch(features, batch)
        self.state = tuple((as_batch(hidden, batch, 1), as_batch(cell, batch, 1)) for hidden, cell in state)

    def fork(self, batch: int, grids: Grids | None = None) -> StatefulReader:
        """A reader of `batch` pieces (on `grids`, None: this one's) that go on from this one-row reader's state,
        which is left as it is: a primer read once serves every draft and every later scoring of it."""
        forked = copy.copy(self)
        forked.grids = batch_grids(self.grids if grids is None else grids, batch)
        forked.features = as_batch(self.features, batch)
        forked.state = tuple((as_batch(hidden, batch, 1), as_batch(cell, batch, 1)) for hidden, cell in self.state)
        return forked

    def read(self, events: torch.Tensor) -> None:
        """Take the next step's events (batch, 176)."""
        row = encode(events[:, None], self.position, self.model.config.inputs, self.grids)  # (batch, 1, width)
        self.features, self.state = self.model(row, self.state)
        self.position += 1

    def select(self, rows: torch.Tensor) -> None:
        """Go on with these rows of the batch (a resampling may repeat some and drop others)."""
        self.features = self.features[rows]
        self.grids = select_grids(self.grids, rows)
        self.state = tuple((hidden[:, rows], cell[:, rows]) for hidden, cell in self.state)


class WindowReader:
    """Context `window`: each step predicted from the last `window` steps alone, read from a zero state.

    Several pieces re-read their last `window` steps every step, as the seed does. One piece
    (`lanes`, the default for batch 1) gets the same predictions from `window` copies of the state
    ("lanes") run side by side, restarted from zero in turn, one per step: after every step exactly
    one lane has read the last `window` steps from zero, and its output is the window's prediction.
    Re-reading is `window` sequential LSTM steps per step, at batch 1 bound by reading the weights
    `window` times; the lanes were measured 1.4-2.0x faster for one piece (median 1.8x), 1.1-1.3x for
    two and slower for four (docs: benchmarks), so only one piece uses them.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        primer: np.ndarray | torch.Tensor,
        batch: int,
        grids: Grids = COMMON_TIME,
        lanes: bool | None = None,
    ):
        self.model, self.window, self.grids = model, model.config.window, batch_grids(grids, batch)
        self.lanes = batch == 1 if lanes is None else lanes
        self.position = np.shape(primer)[-2]
        history = read_with_lead_in(primer, model.config, grids_of_primer(self.grids, primer))[:, -self.window :]
        history = as_batch(history, batch)  # (batch, window, width)
        if not self.lanes:
            self.history = history
            self.features, _ = model(history)
            return
        units = model.config.lstm_units
        n_lanes = batch * self.window  # lane j of piece b is row b * window + j
        self.state = tuple((torch.zeros(1, n_lanes, units), torch.zeros(1, n_lanes, units)) for _ in range(2))
        self.steps_read = 0
        for row in history.unbind(dim=1):
            self.read_lanes(row)

    def read(self, events: torch.Tensor) -> None:
        """Take the next step's events (batch, 176)."""
        row = encode(events[:, None], self.position, self.model.config.inputs, self.grids)[:, 0]  # (batch, width)
        self.position += 1
        if self.lanes:
            self.read_lanes(row)
        else:
            self.history = torch.cat([self.history[:, 1:], row[:, None]], dim=1)
            self.features, _ = self.model(self.history)

    def read_lanes(self, row: torch.Tensor) -> None:
        """Read one encoded step (batch, input_width) into the lanes: restart one, take the full one's features."""
        restarting = self.steps_read % self.window
        for hidden, cell in self.state:
            hidden[:, restarting :: self.window] = 0
            cell[:, restarting :: self.window] = 0
        top, self.state = self.model.recur(row.repeat_interleave(self.window, dim=0)[:, None], self.state)
        self.steps_read += 1
        full = self.steps_read % self.window  # the lane that has now read exactly `window` steps
        self.features = self.model.features(top.view(len(row), self.window, -1)[:, full])

    def select(self, rows: torch.Tensor) -> None:
        """Go on with these rows of the batch (a resampling may repeat some and drop others)."""
        self.features = self.features[rows]
        self.grids = select_grids(self.grids, rows)
        if not self.lanes:
            self.history = self.history[rows]
            return
        lanes = (rows[:, None] * self.window + torch.arange(self.window)).flatten()
        self.state = tuple((hidden[:, lanes], cell[:, lanes]) for hidden, cell in self.state)


def grids_of_primer(grids: Grids, primer: np.ndarray | torch.Tensor) -> Grids:
    """The grids a primer is read on: the batch's, or where one primer row is shared by every piece, the first's."""
    return grids if isinstance(grids, Grid) or len(primer) == len(grids) else grids[0]


def select_grids(grids: Grids, rows: torch.Tensor) -> Grids:
    """The grids of these rows of a batch."""
    return grids if isinstance(grids, Grid) else [grids[row] for row in rows.tolist()]


def open_reader(
    model: torch.nn.Module, primer: np.ndarray | torch.Tensor, context: str, batch: int, grids: Grids = COMMON_TIME
) -> StatefulReader | WindowReader:
    """A reader of `primer`'s events (batch or 1 shared row, steps, 176), read after its lead-in, for
    `batch` pieces on `grids` (one, or one per piece) in a context: `features`, `read(events)` and
    `select(rows)`."""
    return (StatefulReader if context == "stateful" else WindowReader)(model, primer, batch, grids)


@torch.inference_mode()
def piece_features(
    model: torch.nn.Module, events: np.ndarray, context: str, grid: Grid = COMMON_TIME
) -> Iterator[torch.Tensor]:
    """The features that predict every step of a piece's events (steps, 176), each from the steps before it.

    Yields them a chunk of frames at a time, (frames in the chunk, dense_units), so that scoring a
    long piece holds one chunk's features, never the whole piece's. Context `stateful` reads the piece
    once, its state carried through; `window` reads each frame's last `window` frames from zero.
    """
    check_one_of("context", context, CONTEXTS)
    window, frames = model.config.window, len(events)
    padded = read_with_lead_in(events, model.config, grid)  # (window + frames, input_width)
    if context == "stateful":
        state, lead_in = None, window - 1  # the features after the lead-in's steps but its last predict nothing
        for chunk in model.chunks(padded[None, : window + frames - 1]):
            features, state = model(chunk, state, every_step=True)
            if len(features[0]) > lead_in:
                yield features[0, lead_in:]
            lead_in = max(0, lead_in - len(features[0]))
        return
    # (frames, window, width): frame t sees t-window..t-1
    windows = padded.unfold(0, window, 1)[:frames].transpose(1, 2)
    for batch in windows.split(WINDOWS_PER_BATCH):
        yield model(batch)[0]
