"""How the network reads a piece: the input encoder, the silence lead-in, and the two contexts.

A piece is read as frames, a roll (steps, 88) of keys (bool or float), each step at an absolute
position: 0 is the piece's first step, and the `window` steps of silence read before it (its
lead-in, `with_lead_in`) are -window..-1. `encode` turns frames and the position of the first into
the rows the network reads, float32 (steps, input_width), one `INPUT_FEATURES` entry after another
as the model's config names them (`ModelConfig.inputs`; today the 88 keys alone). Training's
datasets, scoring (`piece_features`) and composing (the readers) all read through it, so an input
(a step's place in the bar, keys struck again) is added here once.

A reader keeps one of the two contexts a model predicts in, for a batch of pieces composed step by
step: `StatefulReader` (context `stateful`: the LSTM state runs on through the whole piece) and
`WindowReader` (context `window`: each step predicted from the last `window` steps alone, from a
zero state). Both hold `features` (batch, dense_units), which predict the next step, `read(frame)`
the step drawn, and `select(rows)` (go on with these rows of the batch, for particles). Nothing here
imports Lightning or reads a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from musiclstm.config import CONTEXTS, N_KEYS, ModelConfig, MusicLSTMError, check_one_of

if TYPE_CHECKING:
    from musiclstm.model import MusicLSTM

WINDOWS_PER_BATCH = 256  # windows scored per forward pass in context `window`
DEFAULT_INPUTS = ModelConfig().inputs  # the 88 keys alone, what every model read before inputs were named


@dataclass(frozen=True)
class InputFeature:
    """One input of the network: `width` columns per step, from the keys and each step's absolute position.

    `columns(keys, positions)` takes keys float32 (..., steps, 88) and positions int64 (steps,) and
    returns float32 (..., steps, width).
    """

    width: int
    columns: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


INPUT_FEATURES = {
    "keys": InputFeature(N_KEYS, lambda keys, positions: keys),  # the keys sounding, as 0/1
}


def input_feature(name: str) -> InputFeature:
    """The input feature called `name`, refused with the known names when there is none."""
    if name not in INPUT_FEATURES:
        raise MusicLSTMError(f"unknown input '{name}': choose among {', '.join(INPUT_FEATURES)}")
    return INPUT_FEATURES[name]


def input_width(config: ModelConfig) -> int:
    """Columns of the rows a model with this config reads per step: its inputs' widths, summed."""
    return sum(input_feature(name).width for name in config.inputs)


def encode(frames: np.ndarray | torch.Tensor, start: int, inputs: tuple[str, ...] = DEFAULT_INPUTS) -> torch.Tensor:
    """The rows the network reads for frames (..., steps, 88) whose first step is at position `start`.

    Returns float32 (..., steps, width): the `inputs` named (a model's `config.inputs`) side by side, in order.
    """
    keys = torch.as_tensor(frames).to(torch.float32)
    positions = torch.arange(start, start + keys.shape[-2])
    columns = [input_feature(name).columns(keys, positions) for name in inputs]
    return columns[0] if len(columns) == 1 else torch.cat(columns, dim=-1)


def with_lead_in(frames: np.ndarray, silent_steps: int) -> np.ndarray:
    """Frames (..., steps, 88) after `silent_steps` steps of silence.

    Every piece is read after `window` steps of silence (its lead-in) in training, evaluation and
    composing alike, so its first frame is predicted from silence and a model never sees a piece
    start mid-context.
    """
    padding = [(0, 0)] * (np.ndim(frames) - 2) + [(silent_steps, 0), (0, 0)]
    return np.pad(frames, padding)


def read_with_lead_in(primer: np.ndarray | torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """A primer's frames (..., steps, 88) encoded after its lead-in: (..., window + steps, input_width)."""
    window = config.window
    return encode(with_lead_in(np.asarray(primer, dtype=np.float32), window), -window, config.inputs)


def as_batch(tensor: torch.Tensor, batch: int, dim: int = 0) -> torch.Tensor:
    """`tensor`, whose size along `dim` is 1 or `batch`, as `batch` rows of its own."""
    return tensor.expand(*tensor.shape[:dim], batch, *tensor.shape[dim + 1 :]).contiguous()


class StatefulReader:
    """Context `stateful`: the LSTM state runs on through the whole piece, one step of work per step.

    The primer (1 or batch, steps, 88) is read after its lead-in. A primer of one row shared by the
    batch's pieces is read once and its state copied, so a long primer costs the same for one piece
    as for 256. `position` is the absolute position of the next step read.
    """

    def __init__(self, model: MusicLSTM, primer: np.ndarray | torch.Tensor, batch: int):
        self.model = model
        features, state = model(read_with_lead_in(primer, model.config))
        self.position = np.shape(primer)[-2]
        self.features = as_batch(features, batch)
        self.state = tuple((as_batch(hidden, batch, 1), as_batch(cell, batch, 1)) for hidden, cell in state)

    def read(self, frame: torch.Tensor) -> None:
        """Take the next step's frames (batch, 88)."""
        row = encode(frame[:, None], self.position, self.model.config.inputs)  # (batch, 1, input_width)
        self.features, self.state = self.model(row, self.state)
        self.position += 1

    def select(self, rows: torch.Tensor) -> None:
        """Go on with these rows of the batch (a resampling may repeat some and drop others)."""
        self.features = self.features[rows]
        self.state = tuple((hidden[:, rows], cell[:, rows]) for hidden, cell in self.state)


class WindowReader:
    """Context `window`: each step predicted from the last `window` steps alone, read from a zero state.

    Several pieces re-read their last `window` steps every step, as the seed does. One piece
    (`lanes`, the default for batch 1) gets the same predictions from `window` copies of the state
    ("lanes") run side by side, restarted from zero in turn, one per step: after every step exactly
    one lane has read the last `window` steps from zero, and its output is the window's prediction.
    Re-reading is `window` sequential LSTM steps per step, at batch 1 bound by reading the weights
    `window` times; the lanes were measured 1.4-2.0x faster for one piece (median 1.8x), 1.1-1.3x for
    two and slower for four (README), so only one piece uses them.
    """

    def __init__(self, model: MusicLSTM, primer: np.ndarray | torch.Tensor, batch: int, lanes: bool | None = None):
        self.model, self.window = model, model.config.window
        self.lanes = batch == 1 if lanes is None else lanes
        self.position = np.shape(primer)[-2]
        history = as_batch(read_with_lead_in(primer, model.config)[:, -self.window :], batch)  # (batch, window, width)
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

    def read(self, frame: torch.Tensor) -> None:
        """Take the next step's frames (batch, 88)."""
        row = encode(frame, self.position, self.model.config.inputs)  # (batch, input_width)
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
        if not self.lanes:
            self.history = self.history[rows]
            return
        lanes = (rows[:, None] * self.window + torch.arange(self.window)).flatten()
        self.state = tuple((hidden[:, lanes], cell[:, lanes]) for hidden, cell in self.state)


def open_reader(
    model: MusicLSTM, primer: np.ndarray | torch.Tensor, context: str, batch: int
) -> StatefulReader | WindowReader:
    """A reader of `primer` (batch or 1 shared row, steps, 88), read after its lead-in, for `batch`
    pieces in a context: `features`, `read(frame)` and `select(rows)`."""
    return (StatefulReader if context == "stateful" else WindowReader)(model, primer, batch)


@torch.inference_mode()
def piece_features(model: MusicLSTM, roll: np.ndarray, context: str) -> Iterator[torch.Tensor]:
    """The features that predict every frame of a piece (steps, 88), each from the frames before it, in order.

    Yields them a chunk of frames at a time, (frames in the chunk, dense_units), so that scoring a
    long piece holds one chunk's features, never the whole piece's. Context `stateful` reads the piece
    once, its state carried through; `window` reads each frame's last `window` frames from zero.
    """
    check_one_of("context", context, CONTEXTS)
    window, frames = model.config.window, len(roll)
    padded = read_with_lead_in(roll, model.config)  # (window + frames, input_width)
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
