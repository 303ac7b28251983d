"""Is a generated piece new? The longest passage it shares with a training piece, and its bars found there.

Passages are compared transposition-invariant: a passage is moved so that its lowest sounding key is
key 0 before it is compared, so a chorale copied a tone higher is still a copy. Silent passages are
never compared. Each passage of `steps` steps is reduced to a 62-bit hash (two polynomial hashes
mod 2^31 - 1, over keys within a step and over steps), computed for every start of every training
piece at once with prefix sums: O(total training steps) numpy work per passage length, kept for
the next piece. The longest shared passage is found by halving (a passage shared at length L is
shared at every shorter length too), and checked step by step at the end, so a hash collision can
never report a copy. Rolls are (steps, 88) bool; nothing here imports torch.
"""

from __future__ import annotations

import time

import numpy as np

from musiclstm.music.piece import bottom_line

PRIME = 2_147_483_647  # 2^31 - 1: products of two residues fit in int64
KEY_BASES = (1_000_003, 7_919)  # one per hash
STEP_BASES = (911_382_323, 972_663_749)
COPY_WARNING_BARS = 4  # `generate` warns when a piece copies this many bars or more
SILENT = 10**6  # the lowest key of a silent step: above every key
CACHED_LENGTHS = 12  # passage lengths whose hashes are kept (one int64 and one start per training step each)
CHECKED_MATCHES = 32  # hash matches checked step by step per length, before calling a length unshared


def power_table(base: int, count: int) -> np.ndarray:
    """base^0 .. base^(count - 1) mod PRIME, int64, by repeated squaring over all exponents at once."""
    exponents = np.arange(count, dtype=np.int64)
    result, square = np.ones(count, dtype=np.int64), base % PRIME
    for bit in range(max(count - 1, 1).bit_length()):
        result = np.where((exponents >> bit) & 1, result * square % PRIME, result)
        square = square * square % PRIME
    return result


def inverse(value: int) -> int:
    return pow(int(value), PRIME - 2, PRIME)


class PassageHashes:
    """Transposition-invariant hashes of the passages of a set of pieces, for any passage length."""

    def __init__(self, rolls: list[np.ndarray]):
        self.rolls = [np.asarray(roll, dtype=bool) for roll in rolls]
        frames = np.concatenate(self.rolls) if self.rolls else np.zeros((0, 88), dtype=bool)
        self.lengths = np.array([len(roll) for roll in self.rolls], dtype=np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)])[:-1].astype(np.int64)
        self.piece_of = np.repeat(np.arange(len(self.rolls)), self.lengths)
        self.lowest = np.where(frames.any(axis=1), bottom_line(frames), SILENT)  # lowest key of each step
        self.prefix, self.step_inverses, self.key_inverses = [], [], []
        for key_base, step_base in zip(KEY_BASES, STEP_BASES, strict=True):
            step_hash = frames.astype(np.int64) @ power_table(key_base, frames.shape[1]) % PRIME  # (steps,)
            weighted = step_hash * power_table(step_base, len(frames)) % PRIME
            self.prefix.append(np.concatenate([[0], np.cumsum(weighted)]))  # below 2^62 for 2^31 steps
            self.step_inverses.append(power_table(inverse(step_base), len(frames)))
            self.key_inverses.append(power_table(inverse(key_base), frames.shape[1]))
        self.cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def windows(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Every non-silent passage of `steps` steps that lies inside one piece: hashes sorted, and each one's
        first step (counted over all pieces end to end). The last CACHED_LENGTHS lengths asked for are kept."""
        if steps not in self.cache:
            if len(self.cache) >= CACHED_LENGTHS:
                self.cache.pop(next(iter(self.cache)))
            self.cache[steps] = self.hash_windows(steps)
        return self.cache[steps]

    def hash_windows(self, steps: int) -> tuple[np.ndarray, np.ndarray]:
        first = np.arange(max(len(self.piece_of) - steps + 1, 0))
        if not len(first):
            return np.zeros(0, np.int64), first
        lowest = window_minimum(self.lowest, steps)  # over steps first..first+steps-1
        piece = self.piece_of[first]
        keep = (first + steps <= self.starts[piece] + self.lengths[piece]) & (lowest < SILENT)
        first, shift = first[keep], lowest[keep]
        combined = np.zeros(len(first), dtype=np.int64)
        for prefix, step_inverses, key_inverses in zip(self.prefix, self.step_inverses, self.key_inverses, strict=True):
            window = (prefix[first + steps] - prefix[first]) % PRIME * step_inverses[first] % PRIME
            combined = (combined << 31) | (window * key_inverses[shift] % PRIME)
        order = np.argsort(combined, kind="stable")
        return combined[order], first[order]

    def locate(self, step: int) -> tuple[int, int]:
        """The piece and the step within it of a step counted over all pieces end to end."""
        piece = int(self.piece_of[step])
        return piece, int(step - self.starts[piece])

    def passage(self, step: int, steps: int) -> np.ndarray:
        piece, at = self.locate(step)
        return self.rolls[piece][at : at + steps]


def window_minimum(values: np.ndarray, steps: int) -> np.ndarray:
    """The least of each run of `steps` values: (len(values) - steps + 1,), in O(n log steps).

    Minima of runs of doubling length, until one run is at least half a window; each window is then two such runs
    that overlap (numpy alone: scipy's filter costs a third of a second to import, in every composing command).
    """
    runs, length = np.asarray(values), 1
    while 2 * length <= steps:
        runs, length = np.minimum(runs[:-length], runs[length:]), 2 * length  # runs[i]: min of values[i : i + length]
    count = len(values) - steps + 1
    return np.minimum(runs[:count], runs[steps - length : steps - length + count])


def canonical(passage: np.ndarray) -> np.ndarray:
    """A passage moved down so that its lowest sounding key is key 0."""
    return np.roll(passage, -int(np.argmax(passage.any(axis=0))), axis=1)


def shared(piece: PassageHashes, training: PassageHashes, steps: int) -> tuple[int, int] | None:
    """A passage of `steps` steps of the piece that a training piece holds too: (its first step in the piece,
    in the training pieces end to end), checked step by step; None when there is none."""
    hashes, starts = piece.windows(steps)
    known, known_starts = training.windows(steps)
    left, right = np.searchsorted(known, hashes, "left"), np.searchsorted(known, hashes, "right")
    for index in np.flatnonzero(right > left)[:CHECKED_MATCHES]:
        mine = canonical(piece.passage(int(starts[index]), steps))
        for match in known_starts[left[index] : right[index]][:CHECKED_MATCHES]:
            if np.array_equal(mine, canonical(training.passage(int(match), steps))):
                return int(starts[index]), int(match)
    return None


def novelty(
    roll: np.ndarray, training: PassageHashes, names: list[str], steps_per_bar: int, primer_steps: int = 0
) -> dict:
    """How much of a piece (its primer left out) also occurs in the training pieces, transposition-invariant.

    Returns `longest_shared_steps` and `longest_shared_bars`, where that passage lies (`at_step` in the
    piece, primer included; `source`, the training piece's name, and `source_step`), and
    `copied_bar_share`: the share of the piece's non-silent whole bars (counted from the primer's end)
    found somewhere in a training piece. A piece that shares nothing gives 0 and None.
    """
    made = np.asarray(roll, dtype=bool)[primer_steps:]
    piece = PassageHashes([made])
    low, high, best = 0, len(made), None
    while low < high:  # the longest shared length lies in [low, high]
        middle = (low + high + 1) // 2
        found = shared(piece, training, middle)
        if found is None:
            high = middle - 1
        else:
            low, best = middle, found
    result = {"longest_shared_steps": low, "longest_shared_bars": round(low / steps_per_bar, 2)}
    if best is None:
        result.update(at_step=None, source=None, source_step=None)
    else:
        source, source_step = training.locate(best[1])
        result.update(at_step=best[0] + primer_steps, source=names[source], source_step=source_step)
    hashes, starts = piece.windows(steps_per_bar)
    bars = starts % steps_per_bar == 0
    known = training.windows(steps_per_bar)[0]
    found = np.searchsorted(known, hashes[bars], "left") < np.searchsorted(known, hashes[bars], "right")
    result["copied_bar_share"] = float(found.mean()) if bars.any() else 0.0
    return result


def copies_bars(entry: dict, bars: int) -> bool:
    return entry["longest_shared_bars"] >= bars


def novelty_report(
    pieces: dict[str, np.ndarray], training_rolls: list[np.ndarray], names: list[str], steps_per_bar: int
) -> dict:
    """The novelty of each of a set of pieces (primers already left out) against the training pieces, and a
    summary: the longest shared passage of any piece, the mean share of copied bars, and how many pieces
    copy COPY_WARNING_BARS bars or more. `seconds` is what it cost."""
    started = time.perf_counter()
    training = PassageHashes(training_rolls)
    each = {name: novelty(roll, training, names, steps_per_bar) for name, roll in pieces.items()}
    longest = max(each.values(), key=lambda entry: entry["longest_shared_steps"])
    return {
        "training_pieces": len(training_rolls),
        "training_steps": int(training.lengths.sum()),
        "longest_shared_bars": longest["longest_shared_bars"],
        "mean_copied_bar_share": float(np.mean([entry["copied_bar_share"] for entry in each.values()])),
        "pieces_copying_4_bars_or_more": sum(
            entry["longest_shared_bars"] >= COPY_WARNING_BARS for entry in each.values()
        ),
        "seconds": round(time.perf_counter() - started, 3),
        "pieces": each,
    }
