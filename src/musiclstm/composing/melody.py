"""What keeping a melody on top asks of the step loop, for harmonize and for infill's `keep_melody`.

A melody is a top line: the key index of the highest sounding key at each step, -1 at a rest (`Piece.top_line`).
At each step where it sounds its key is forced on and every key above it kept silent (`melody_limits`), struck
where the melody strikes it (`melody_strikes`); its NLL under the model weighs particles (`melody_nll`).
Particles cost time and memory in proportion, so their number and their steps are capped.
"""

from __future__ import annotations

import numpy as np
import torch

from musiclstm.config import N_KEYS, MusicLSTMError
from musiclstm.music.piece import onsets_of
from musiclstm.network.model import MusicLSTM

MAX_PARTICLES = 1_024  # a step of 1,024 particles takes over a second and 300 MB beyond the model (docs: benchmarks)
MAX_PARTICLE_STEPS = 2**21  # the trace back keeps ~96 bytes per particle-step: 200 MB, under an hour of drawing


def line_roll(line: np.ndarray) -> np.ndarray:
    """A top line (steps,) as a roll (steps, 88) holding just its notes."""
    roll = np.zeros((len(line), N_KEYS), dtype=bool)
    sounding = np.flatnonzero(line >= 0)
    roll[sounding, line[sounding]] = True
    return roll


def melody_strikes(line: np.ndarray, onsets: np.ndarray | None = None) -> np.ndarray:
    """Where a top line (steps,) strikes its key, (steps,) bool: where the line's key starts to sound, and,
    given the piece's struck keys (steps, 88), where the piece strikes the line's key again."""
    struck = onsets_of(line_roll(line)).any(axis=1)
    if onsets is not None:
        struck |= onsets[np.arange(len(line)), line] & (line >= 0)
    return struck


def melody_limits(line: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """What each step must obey: `forced` (steps, 88), the melody's key; `below` (steps, 88), the keys that may
    sound (at and under the melody's key; at a rest, under its last note; before its first, none)."""
    if not (line >= 0).any():
        raise MusicLSTMError("the melody has no notes")
    last = np.maximum.accumulate(np.where(line >= 0, np.arange(len(line)), -1))
    ceiling = np.where(last >= 0, line[np.maximum(last, 0)], -1)
    below = np.arange(N_KEYS)[None, :] <= ceiling[:, None]
    return torch.from_numpy(line_roll(line)), torch.from_numpy(below)


def melody_nll(
    model: MusicLSTM,
    features: torch.Tensor,
    step: int,
    forced: torch.Tensor,
    below: torch.Tensor,
    previous: torch.Tensor,
):
    """-log p(the melody at `step`: its key on, the keys above it off | each row's past), shape (batch,);
    `previous` (batch, 88) the keys each row sounds the step before.

    Exact for a NADE head ordered high-to-low and for the independent head; for a NADE head ordered
    low-to-high it conditions on silence below the melody, an approximation.
    """
    frames = forced[step].expand(len(features), -1).float()
    return model.key_nll(features, frames, previous)[:, ~below[step] | forced[step]].sum(-1)
