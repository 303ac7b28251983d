"""Turn the stored rolls of a corpus split into training examples, sliced on the fly.

Every frame is a target: a piece of T frames gives T examples. Example (piece, t) is the `window`
frames before t as input, shape (window, 88), silence where they fall before the piece's start, and
frame t as target, shape (88,). Examples are cut from the bit-packed, memory-mapped rolls when asked
for, so memory holds 11 bytes per frame instead of the seed's window x 88 x 4 bytes per example.
Transposition (-5..+6 semitones) is drawn per example, among the shifts that keep every note of
that example on the keyboard.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from musiclstm.config import DEFAULT_WINDOW, N_KEYS, TRANSPOSE_RANGE, MusicLSTMError
from musiclstm.corpus import Corpus, unpack_roll


def shift_keys(block: np.ndarray, semitones: int) -> np.ndarray:
    """Move every note of a (steps, 88) block up by `semitones` (down when negative); notes pushed off drop."""
    shifted = np.zeros_like(block)
    if semitones >= 0:
        shifted[:, semitones:] = block[:, : N_KEYS - semitones]
    else:
        shifted[:, :semitones] = block[:, -semitones:]
    return shifted


def allowed_shifts(block: np.ndarray, low: int = TRANSPOSE_RANGE[0], high: int = TRANSPOSE_RANGE[1]) -> range:
    """The semitone shifts in low..high that keep every note of a (steps, 88) block on the keyboard."""
    sounding = np.flatnonzero(block.any(axis=0))
    if sounding.size == 0:
        return range(low, high + 1)
    return range(max(low, -int(sounding[0])), min(high, N_KEYS - 1 - int(sounding[-1])) + 1)


class WindowDataset(Dataset):
    """Examples of one corpus split: `window` frames of left context and the frame that follows.

    Items are `(inputs, target)` float32 tensors of shape (window, 88) and (88,).
    """

    def __init__(self, corpus: Corpus, split: str, window: int = DEFAULT_WINDOW, transpose: bool = False):
        if window < 1:
            raise MusicLSTMError(f"window must be at least 1 step, got {window}")
        self.pieces = corpus.split(split)
        if not self.pieces:
            raise MusicLSTMError(f"{corpus.path}: the '{split}' split has no pieces")
        self.window = window
        self.transpose = transpose
        frames = np.array([piece.frames for piece in self.pieces])
        self.starts = np.concatenate([[0], np.cumsum(frames)])  # example index where each piece begins

    def __len__(self) -> int:
        return int(self.starts[-1])

    def locate(self, index: int) -> tuple[int, int]:
        """Map an example index to (piece number, target frame)."""
        if not 0 <= index < len(self):
            raise IndexError(index)
        piece = int(np.searchsorted(self.starts, index, side="right")) - 1
        return piece, index - int(self.starts[piece])

    def example(self, index: int) -> np.ndarray:
        """The example as a bool block of shape (window + 1, 88): the context then the target."""
        piece, frame = self.locate(index)
        first = max(frame - self.window, 0)
        block = np.zeros((self.window + 1, N_KEYS), dtype=bool)
        block[self.window - (frame - first) :] = unpack_roll(self.pieces[piece].packed[first : frame + 1])
        return block

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        block = self.example(index)
        if self.transpose:
            shifts = allowed_shifts(block)
            block = shift_keys(block, shifts[int(torch.randint(len(shifts), ()))])
        tensor = torch.from_numpy(block.astype(np.float32))
        return tensor[:-1], tensor[-1]
