"""Turn the stored rolls of a corpus split into training examples, sliced on the fly.

Every frame is a target exactly once per epoch, and every piece is read after `window` frames of
silence (its lead-in, `with_lead_in`), so a target is never predicted from less than `window` frames of context.
- `WindowDataset` (objective `last`, the seed's): one example per frame t, the `window` frames
  before t as input and frame t as target. window LSTM steps per target.
- `ChunkDataset` (objective `all`): each piece cut into chunks of `chunk` target frames; a chunk's
  input is the `window` frames before it and the chunk itself but its last frame, and the model's
  outputs from the window's last step on predict the chunk: about (window + chunk) / chunk LSTM
  steps per target.
- `PieceStreams` (objective `stateful`): batches of pieces of about the same length, each read from
  its lead-in to its end in chunks of `chunk` target frames, the LSTM state carried from one chunk to
  the next (truncated backpropagation through time): about one LSTM step per target, the window read
  once per piece instead of once per chunk, as the `stateful` context scores.
Examples are cut from the bit-packed, memory-mapped events (the keys sounding and struck) when asked
for, so memory holds 22 bytes per frame instead of the seed's window x 88 x 4 bytes per example.
Transposition (-5..+6 semitones) is drawn per example, among the shifts that keep every note of that
example on the keyboard. Inputs are the rows `reading.encode` makes of an example's events and its
piece's metre for the model's `inputs` (width 88 for the keys alone), after the transposition;
targets are `reading.step_targets` (each frame's events and the keys sounding before it, 264).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset, IterableDataset

from musiclstm.config import DEFAULT_CHUNK, DEFAULT_WINDOW, N_KEYS, TRANSPOSE_RANGE, MusicLSTMError
from musiclstm.data.corpus import Corpus, StoredPiece, unpack_events
from musiclstm.music.metrics import smoothed_frequencies
from musiclstm.music.piece import allowed_shifts, shift_keys
from musiclstm.network.reading import DEFAULT_INPUTS, encode, step_targets, with_lead_in


def read_frames(piece: StoredPiece, first: int, stop: int) -> np.ndarray:
    """Events of frames first..stop-1 of a piece as a bool block (stop - first, 176): the lead-in's silence
    before 0, silence past the end."""
    start, end = max(first, 0), min(max(stop, 0), piece.frames)
    block = with_lead_in(unpack_events(piece.packed[start:end]), start - first)
    return np.pad(block, [(0, stop - first - len(block)), (0, 0)])


def random_transposition(block: np.ndarray) -> np.ndarray:
    """Shift a block by a random number of semitones among those that keep all its notes on the keyboard."""
    shifts = allowed_shifts(block, *TRANSPOSE_RANGE)
    return shift_keys(block, shifts[int(torch.randint(len(shifts), ()))])


def key_frequencies(corpus: Corpus, split: str = "train") -> torch.Tensor:
    """How often each key sounds in a split's frames, (88,) float32, smoothed by one sounding and one
    silent frame so that no key has probability 0 or 1 (its log-odds stay finite)."""
    sounding, frames = np.zeros(N_KEYS), 0
    for piece in corpus.split(split):
        sounding += piece.roll.sum(axis=0)
        frames += piece.frames
    return torch.from_numpy(smoothed_frequencies(sounding, frames)).float()


def split_pieces(corpus: Corpus, split: str, window: int, chunk: int = 1) -> list[StoredPiece]:
    """The pieces of a split, once the window (and the chunk, for the objectives that use one) are checked."""
    if window < 1:
        raise MusicLSTMError(f"window must be at least 1 step, got {window}")
    if chunk < 1:
        raise MusicLSTMError(f"chunk must be at least 1 frame, got {chunk}")
    pieces = corpus.split(split)
    if not pieces:
        raise MusicLSTMError(f"{corpus.path}: the '{split}' split has no pieces")
    return pieces


class WindowDataset(Dataset):
    """Examples of one corpus split: `window` frames of left context and the frame that follows.

    Items are `(inputs, target)` float32 tensors of shape (window, input width) and (264,).
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        window: int = DEFAULT_WINDOW,
        transpose: bool = False,
        inputs: tuple[str, ...] = DEFAULT_INPUTS,
    ):
        self.pieces = split_pieces(corpus, split, window)
        self.window, self.transpose, self.inputs = window, transpose, inputs
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
        """The example as a bool block of shape (window + 1, 176): the context then the target."""
        piece, frame = self.locate(index)
        return read_frames(self.pieces[piece], frame - self.window, frame + 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        block = self.example(index)
        if self.transpose:
            block = random_transposition(block)
        number, frame = self.locate(index)
        events = torch.from_numpy(block.astype(np.float32))
        inputs = encode(events[:-1], frame - self.window, self.inputs, self.pieces[number].grid)
        return inputs, step_targets(events[-2:])[0]


class ChunkDataset(Dataset):
    """Chunks of a corpus split for objective `all`: every frame a target once, after >= `window` frames.

    Items are `(inputs, targets, mask)`: float32 (window + chunk - 1, input width), float32 (chunk, 264) and
    bool (chunk,). The model's outputs at input positions window - 1 onwards predict `targets`;
    `mask` is False for the padding after a piece's last frame.
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        window: int = DEFAULT_WINDOW,
        chunk: int = DEFAULT_CHUNK,
        transpose: bool = False,
        inputs: tuple[str, ...] = DEFAULT_INPUTS,
    ):
        self.pieces = split_pieces(corpus, split, window, chunk)
        self.window, self.chunk, self.transpose, self.inputs = window, chunk, transpose, inputs
        self.items = [
            (number, start) for number, piece in enumerate(self.pieces) for start in range(0, piece.frames, chunk)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        number, start = self.items[index]
        piece = self.pieces[number]
        block = read_frames(piece, start - self.window, start + self.chunk)  # (window + chunk, 176)
        if self.transpose:
            block = random_transposition(block)
        mask = torch.arange(start, start + self.chunk) < piece.frames
        events = torch.from_numpy(block.astype(np.float32))
        targets = step_targets(events[self.window - 1 :])
        return encode(events[:-1], start - self.window, self.inputs, piece.grid), targets, mask


class PieceStreams(IterableDataset):
    """A split read as streams for objective `stateful`: each batch one chunk of a group of pieces.

    Pieces of about the same length (the same number of chunks) are grouped `batch_size` at a time,
    so little is padding. A group's first batch is its pieces' lead-in and first `chunk` frames, like a
    `ChunkDataset` item; every later batch holds the next `chunk` frames only, read from the state the
    previous batch left. Items are `(inputs, targets, mask, first)`: float32 (batch, window + chunk - 1
    or chunk, input width), float32 (batch, chunk, 264), bool (batch, chunk), and a bool that is True on a
    group's first chunk, where the state starts from zero. The model's last `chunk` outputs predict
    `targets`. Training streams are reshuffled every epoch by `seed` and the epoch (and transposed,
    per piece, as `random_transposition` draws); under DDP each process takes its share of the
    training groups, and all take the same number of batches, as DDP needs; every process reads all
    the validation groups.
    """

    def __init__(
        self,
        corpus: Corpus,
        split: str,
        batch_size: int,
        window: int = DEFAULT_WINDOW,
        chunk: int = DEFAULT_CHUNK,
        *,
        transpose: bool = False,
        shuffle: bool = False,
        seed: int = 0,
        inputs: tuple[str, ...] = DEFAULT_INPUTS,
    ):
        self.pieces = split_pieces(corpus, split, window, chunk)
        self.window, self.chunk, self.batch_size = window, chunk, batch_size
        self.transpose, self.shuffle, self.seed, self.inputs = transpose, shuffle, seed, inputs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def chunks_of(self, piece: StoredPiece) -> int:
        return -(-piece.frames // self.chunk)

    def group_chunks(self, group: list[int]) -> int:
        """Batches a group takes: the chunks of its longest piece, which `groups` puts last."""
        return self.chunks_of(self.pieces[group[-1]])

    def groups(self, rng: np.random.Generator) -> list[list[int]]:
        """The pieces' numbers in groups of `batch_size` with about as many chunks, in the order read."""
        order = rng.permutation(len(self.pieces)) if self.shuffle else np.arange(len(self.pieces))
        order = sorted(order, key=lambda number: self.chunks_of(self.pieces[number]))  # stable: shuffled within
        groups = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        return [groups[i] for i in rng.permutation(len(groups))] if self.shuffle else groups

    def __len__(self) -> int:
        """Batches per epoch in one process."""
        return sum(self.group_chunks(group) for group in self.groups(np.random.default_rng(0)))

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        groups = self.groups(rng)
        rank, world = (
            (dist.get_rank(), dist.get_world_size()) if dist.is_available() and dist.is_initialized() else (0, 1)
        )
        if self.shuffle and len(groups) >= world:  # training: each process its share of the groups
            shares = [groups[process::world] for process in range(world)]
        else:  # validation, or too few groups to share: every process reads them all
            shares = [groups] * world
        batches = min(sum(self.group_chunks(group) for group in share) for share in shares)
        yield from self.stream(shares[rank], batches)

    def stream(self, groups: list[list[int]], batches: int):
        for group in groups:
            pieces = [self.pieces[number] for number in group]
            frames_read = self.group_chunks(group) * self.chunk
            blocks = [read_frames(piece, -self.window, frames_read) for piece in pieces]
            if self.transpose:
                blocks = [random_transposition(block) for block in blocks]
            frames = torch.from_numpy(np.stack(blocks).astype(np.float32))  # (group, window + frames_read, 176)
            grids = [piece.grid for piece in pieces]
            rows = encode(frames, -self.window, self.inputs, grids)  # (group, window + frames_read, input width)
            targets_read = step_targets(frames)  # (group, window + frames_read - 1, 264): frame i + 1's
            known = torch.stack([torch.arange(frames_read) < piece.frames for piece in pieces])
            for start in range(0, frames_read, self.chunk):
                if batches == 0:
                    return
                batches -= 1
                first_input = 0 if start == 0 else self.window + start - 1
                targets = slice(self.window + start, self.window + start + self.chunk)
                yield (
                    rows[:, first_input : targets.stop - 1],
                    targets_read[:, targets.start - 1 : targets.stop - 1],
                    known[:, start : start + self.chunk],
                    start == 0,
                )
