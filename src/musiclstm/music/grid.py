"""The beat grid: where a roll's steps fall in the music, and where its phrases end.

A `Grid` holds a piece's time base (steps per beat, a beat being a quarter note whatever the time
signature), its metre (the pickup before the first bar line, the bar length and its changes) and its
marked phrase ends (the steps a fermata lasts). Steps per bar are computed here and nowhere else; time
signatures are read and written through it.
Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields, replace

import numpy as np

from musiclstm.config import (
    BEATS_PER_BAR,
    DEFAULT_STEPS_PER_BEAT,
    MAX_STEPS_PER_BEAT,
    MusicLSTMError,
    check_whole_number,
)

MAX_ROLL_STEPS = 500_000  # 35 hours at 4 steps per beat and 60 bpm; 44 MB of roll
MAX_BEATS_PER_BAR = 64  # the longest bar a Grid holds, in quarter notes


@dataclass(frozen=True)
class Grid:
    """Where a roll's steps fall in the music: its time base, its metre and where its phrases end.

    `steps_per_beat` rows per beat (a quarter note, whatever the time signature), and bars of
    `beats_per_bar` beats with the first bar line at step `bar_offset` (0: the roll starts on a bar
    line; a pickup starts later). The metre may change: `changes` are later sections, each
    (step of a bar line, steps per bar from there on), steps increasing, each on a bar line of the
    section before, and of another length. A change may sit at `bar_offset` itself, to give the first
    section a bar that is not a whole number of beats (7/8 at 4 steps per beat: 14 steps); `beats_per_bar`
    is then BEATS_PER_BAR, as no whole number of beats tells that bar. Before the first bar line the
    first section runs backwards (a pickup is the end of a bar); after the last change the last
    section runs on. A bar of n/d time is n * 4 / d quarter notes: `round(n * 4 / d * steps_per_beat)`
    steps (`bar_steps`).

    `signatures` are the time signatures the file wrote, (numerator, denominator) for each of
    `sections()` in order, so 6/8 stays 6/8 where its steps alone would say 3/4; each must give its
    section's steps per bar. Two sections in a row may then share a bar length under different
    signatures (6/8 then 3/4). Empty, each section's signature is `signature_of` its steps, and
    signatures that all say just that are stored empty, so such a grid equals one made without them.

    `phrase_ends` are the phrase ends the source marks (a fermata), each the steps [first, end) its
    note or chord lasts, counted from step 0 of the piece; increasing and not overlapping (they may
    touch). Empty: none marked, which says nothing of where the phrases end.

    Raises:
        MusicLSTMError: a field out of range, a change off the bar lines, or phrase ends that overlap, named.
    """

    steps_per_beat: int = DEFAULT_STEPS_PER_BEAT
    beats_per_bar: int = BEATS_PER_BAR
    bar_offset: int = 0  # steps before the first bar line
    changes: tuple[tuple[int, int], ...] = ()  # (bar line step, steps per bar from it on), steps increasing
    signatures: tuple[tuple[int, int], ...] = ()  # (numerator, denominator) per section; (): from the steps
    phrase_ends: tuple[tuple[int, int], ...] = ()  # (first step, end step exclusive) of each marked phrase end

    def __post_init__(self) -> None:
        check_whole_number("steps_per_beat", self.steps_per_beat, 1, MAX_STEPS_PER_BEAT)
        check_whole_number("beats_per_bar", self.beats_per_bar, 1, MAX_BEATS_PER_BAR)
        object.__setattr__(self, "changes", checked_changes(self.changes, self.steps_per_beat))
        object.__setattr__(self, "signatures", checked_signatures(self.signatures))
        object.__setattr__(self, "phrase_ends", checked_phrase_ends(self.phrase_ends))
        if self.changes and self.changes[0][0] == self.bar_offset:
            steps_per_bar = self.changes[0][1]
            if steps_per_bar % self.steps_per_beat == 0:
                raise MusicLSTMError(
                    f"changes[0] ({self.bar_offset}, {steps_per_bar}): a first bar of whole beats is "
                    f"beats_per_bar={steps_per_bar // self.steps_per_beat}, not a change"
                )
            object.__setattr__(self, "beats_per_bar", BEATS_PER_BAR)  # no whole number of beats tells this bar
        check_whole_number("bar_offset", self.bar_offset, 0, self.steps_per_bar - 1)
        self.check_signatures()
        written = self.section_signatures()
        start, length = self.bar_offset, self.beats_per_bar * self.steps_per_beat
        first_index = 0 if self.changes and self.changes[0][0] == start else 1  # changes[i] is sections()[i + this]
        for index, (step, steps_per_bar) in enumerate(self.changes):
            if index == 0 and step == start:
                start, length = step, steps_per_bar
                continue
            name = f"changes[{index}] ({step}, {steps_per_bar})"
            if step <= start:
                raise MusicLSTMError(f"{name}: its step must come after {start}, where the section before starts")
            if (step - start) % length:
                raise MusicLSTMError(
                    f"{name}: step {step} is not on a bar line of the section before "
                    f"(bars of {length} steps from {start})"
                )
            section = index + first_index
            if steps_per_bar == length and written[section] == written[section - 1]:
                raise MusicLSTMError(
                    f"{name}: keeps the bar of {length} steps of the section before"
                    + (f" and its time signature {'/'.join(map(str, written[section]))}" if self.signatures else "")
                    + "; leave it out"
                )
            start, length = step, steps_per_bar

    def check_signatures(self) -> None:
        """Store `signatures` empty where they all say what the steps say; refuse ones that do not fit.

        Raises:
            MusicLSTMError: not one signature per section, or one whose bar is not its section's steps.
        """
        if not self.signatures:
            return
        sections = self.sections()
        if len(self.signatures) != len(sections):
            raise MusicLSTMError(
                f"signatures: {len(self.signatures)} given for {len(sections)} metre sections; give one per "
                "section (sections()), or none"
            )
        for index, ((numerator, denominator), (step, length)) in enumerate(zip(self.signatures, sections, strict=True)):
            if bar_steps(numerator, denominator, self.steps_per_beat) != length:
                raise MusicLSTMError(
                    f"signatures[{index}] {numerator}/{denominator}: a bar of "
                    f"{bar_steps(numerator, denominator, self.steps_per_beat)} steps at {self.steps_per_beat} per "
                    f"beat, but the section from step {step} has bars of {length}"
                )
        if all(
            written == fallback_signature(length, self.steps_per_beat)
            for written, (_, length) in zip(self.signatures, sections, strict=True)
        ):
            object.__setattr__(self, "signatures", ())

    def section_signatures(self) -> list[tuple[int, int] | None]:
        """The time signature of each of `sections()`: the one written, else `signature_of` its steps (None if none)."""
        if self.signatures:
            return list(self.signatures)
        return [fallback_signature(length, self.steps_per_beat) for _, length in self.sections()]

    @property
    def steps_per_bar(self) -> int:
        """Steps in one bar of the first section (the bar at `bar_offset`)."""
        if self.changes and self.changes[0][0] == self.bar_offset:
            return self.changes[0][1]
        return self.beats_per_bar * self.steps_per_beat

    def sections(self) -> list[tuple[int, int]]:
        """The metre's sections as (step of their first bar line, steps per bar), the first at `bar_offset`."""
        if self.changes and self.changes[0][0] == self.bar_offset:
            return list(self.changes)
        return [(self.bar_offset, self.steps_per_bar), *self.changes]

    def place_in_bar(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Say where each step falls in its bar, for any whole-number positions (negative: before the piece).

        Returns:
            (steps since the last bar line, steps in that bar), both int64 arrays of the shape of `positions`.
        """
        positions = np.asarray(positions, dtype=np.int64)
        starts, lengths = (np.array(column, dtype=np.int64) for column in zip(*self.sections(), strict=True))
        section = np.maximum(np.searchsorted(starts, positions, side="right") - 1, 0)
        length = lengths[section]
        return (positions - starts[section]) % length, length

    def is_bar_start(self, step: int) -> bool:
        """Whether a bar line falls before step `step` (from 0)."""
        return bool(self.place_in_bar(np.array(step))[0] == 0)

    def is_beat_start(self, step: int) -> bool:
        """Whether a beat starts at step `step` (from 0); beats are counted from each bar line."""
        return bool(self.place_in_bar(np.array(step))[0] % self.steps_per_beat == 0)

    def bar_starts(self, n_steps: int) -> np.ndarray:
        """The steps from 0 to `n_steps` (both included) where a bar line falls, increasing."""
        sections = self.sections()
        ends = [min(step, n_steps + 1) for step, _ in sections[1:]] + [n_steps + 1]
        steps = [np.arange(start, end, length) for (start, length), end in zip(sections, ends, strict=True)]
        return np.concatenate(steps).astype(np.int64)

    def n_bars(self, n_steps: int) -> int:
        """The bars `n_steps` steps take, a bar begun counted whole, a pickup as a bar; at least 1."""
        pickup = 1 if self.bar_offset else 0
        return max(1, pickup + int(np.count_nonzero(self.bar_starts(n_steps) < n_steps)))

    def with_phrase_ends(self, spans: Iterable[tuple[int, int]]) -> Grid:
        """The same grid with its phrase ends replaced by `spans` ((first step, end step) pairs, checked)."""
        return replace(self, phrase_ends=tuple(spans))

    def phrase_end_flags(self, positions: np.ndarray) -> np.ndarray:
        """Whether each whole-number position (negative: before the piece) lies in a phrase end: bool, its shape."""
        positions = np.asarray(positions, dtype=np.int64)
        if not self.phrase_ends:
            return np.zeros(positions.shape, dtype=bool)
        firsts, ends = (np.array(column, dtype=np.int64) for column in zip(*self.phrase_ends, strict=True))
        index = np.searchsorted(firsts, positions, side="right") - 1
        return (index >= 0) & (positions < ends[np.maximum(index, 0)])

    def shifted(self, start: int) -> Grid:
        """The same metre seen from step `start` on: the grid of a passage that begins at `start`.

        The bar in force at `start` holds from there (a passage starting inside it opens with a pickup);
        the later changes follow, moved by `start`. Passages start on bar lines in musiclstm; one that
        starts inside the last bar before a change reads its pickup in the new section's bars. The phrase
        ends that end after `start` move by `start`, one under way there cut to begin at 0.
        """
        phrase_ends = tuple((max(first - start, 0), end - start) for first, end in self.phrase_ends if end > start)
        place, length = (int(value) for value in self.place_in_bar(np.array(start)))
        first_line = (length - place) % length
        sections, written = self.sections(), self.section_signatures()
        in_force = max(0, sum(step <= start for step, _ in sections) - 1)
        signature = written[in_force]
        later = [(step - start, steps) for step, steps in sections if step > start]
        later_written = written[len(sections) - len(later) :]
        if later and later[0][0] == first_line:  # the passage's first bar line begins a new section
            length = later.pop(0)[1]
            signature = later_written.pop(0)
            first_line %= length
        signatures = (signature, *later_written) if self.signatures else ()
        if length % self.steps_per_beat:
            beats_per_bar, later = BEATS_PER_BAR, [(first_line, length), *later]
        else:
            beats_per_bar = length // self.steps_per_beat
        return Grid(self.steps_per_beat, beats_per_bar, first_line, tuple(later), signatures, phrase_ends)

    def cropped(self, n_steps: int) -> Grid:
        """The grid of the first `n_steps` steps: phrase ends from `n_steps` on left out, one under way there cut."""
        if not self.phrase_ends or self.phrase_ends[-1][1] <= n_steps:
            return self
        return self.with_phrase_ends((first, min(end, n_steps)) for first, end in self.phrase_ends if first < n_steps)

    def phrased(self, start: int, end: int, bars: int) -> Grid:
        """The grid with a phrase end every `bars` bars over the steps [start, end), its marks before `start` kept.

        Each placed phrase end lasts a beat from the half bar (beat 3 of 4/4, where most chorale
        fermatas fall), or from the next bar line in a bar of an odd number of beats. The first falls
        `bars` bars after the bar of the last phrase end before `start`, or where none is marked, in
        the `bars`-th bar from `start`. Marks from `start` on are replaced.
        """
        kept = self.cropped(start).phrase_ends
        lines = [int(line) for line in self.bar_starts(end + self.steps_per_bar * (bars + 1))]
        placed_from = start
        if kept:
            last_bar = sum(line <= kept[-1][0] for line in lines) - 1  # -1: in the pickup
            indices = range(last_bar + bars, len(lines) - 1, bars)
            placed_from = kept[-1][1]
        else:
            first = next((index for index, line in enumerate(lines) if line >= start), len(lines) - 1)
            indices = range(first + bars - 1, len(lines) - 1, bars)
        spans = []
        for index in indices:
            line, length = lines[index], lines[index + 1] - lines[index]
            beats = length // self.steps_per_beat
            first_step = line + length // 2 if beats % 2 == 0 and length % self.steps_per_beat == 0 else line + length
            first_step = max(first_step, placed_from)
            if first_step >= end:
                break
            spans.append((first_step, min(first_step + self.steps_per_beat, end)))
            placed_from = spans[-1][1]
        return self.with_phrase_ends((*kept, *spans))

    def to_dict(self) -> dict:
        """The grid as JSON-able values; `Grid.from_dict` reads it back."""
        return {
            "steps_per_beat": self.steps_per_beat,
            "beats_per_bar": self.beats_per_bar,
            "bar_offset": self.bar_offset,
            "changes": [list(change) for change in self.changes],
        } | (
            ({"signatures": [list(signature) for signature in self.signatures]} if self.signatures else {})
            | ({"phrase_ends": [list(span) for span in self.phrase_ends]} if self.phrase_ends else {})
        )

    @classmethod
    def from_dict(cls, values: dict) -> Grid:
        """Read a grid written by `to_dict`; a dict without `changes`, `signatures`, `phrase_ends` (or other fields)
        takes their defaults, so a grid stored before signatures or phrase ends were kept reads back as it was.

        Raises:
            MusicLSTMError: not a dict, an unknown field, or a field out of range.
        """
        if not isinstance(values, dict):
            raise MusicLSTMError(f"a grid must be a dict of its fields, got {type(values).__name__}")
        unknown = set(values) - {field.name for field in fields(cls)}
        if unknown:
            raise MusicLSTMError(f"a grid has no field {', '.join(sorted(unknown))}")
        return cls(**values)  # changes, signatures and phrase ends as JSON lists are made tuples by the checks

    @classmethod
    def from_bar_lines(cls, steps_per_beat: int, bar_lines: Iterable[tuple]) -> Grid:
        """Build the grid of a piece from the steps where its file states a time signature or starts a bar.

        Each (step, steps per bar) or (step, steps per bar, (numerator, denominator)) starts a bar at
        `step` and bars of that length from there on (a second one at a step replaces the first); 4/4
        from step 0 until the first. One that falls inside a bar cuts that bar short, making it a
        section of one bar; the first bar cut short, when shorter than the bars after it, is a pickup:
        the end of a bar of the next section (`bar_offset`). A short first bar with a time signature of
        its own stays a bar. Equal bars in a row under the same signature are one section. Steps per bar
        are capped at MAX_BEATS_PER_BAR beats. A signature given is kept (`signatures`: 6/8 stays 6/8)
        where it gives its bar's steps; a bar cut short, or one without, takes `signature_of` its steps.
        A Grid written by `roll_to_midi` (`time_signatures`) reads back equal.
        """
        pairs = sorted(((int(line[0]), int(line[1]), *line[2:3]) for line in bar_lines), key=lambda line: line[0])
        stated = {line[0]: line[1:] for line in pairs}  # the sort is stable: the last stated at a step wins
        longest = MAX_BEATS_PER_BAR * steps_per_beat

        def section(step: int, length: int, signature: object = None) -> tuple[int, int, tuple[int, int] | None]:
            """A section from `step` of bars of `length` steps, under `signature` where it fits them, else theirs."""
            if signature is not None:
                try:
                    (signature,) = checked_signatures([tuple(int(value) for value in signature)])
                except (MusicLSTMError, TypeError, ValueError):
                    signature = None
                if signature is not None and bar_steps(*signature, steps_per_beat) != length:
                    signature = None  # capped at MAX_BEATS_PER_BAR, or not a signature a file can hold
            return step, length, signature or fallback_signature(length, steps_per_beat)

        sections, is_first_bar_cut = [section(0, BEATS_PER_BAR * steps_per_beat)], False
        for step, (length, *signature) in stated.items():
            start, current, written = sections.pop()
            last_bar = start + (step - start) // current * current
            if last_bar > start:
                sections.append((start, current, written))
            if last_bar < step:
                sections.append(section(last_bar, step - last_bar))
                is_first_bar_cut |= last_bar == 0
            sections.append(section(step, min(max(1, length), longest), *signature))
        merged = [sections[0]]
        for step, length, written in sections[1:]:
            if (length, written) != merged[-1][1:]:
                merged.append((step, length, written))
        bar_offset = 0
        if is_first_bar_cut and len(merged) > 1 and merged[1][0] == merged[0][1] < merged[1][1]:
            bar_offset = merged.pop(0)[1]
        signatures = tuple(written for _, _, written in merged) if None not in [w for *_, w in merged] else ()
        merged = [(step, length) for step, length, _ in merged]
        (_, first), changes = merged[0], merged[1:]
        if first % steps_per_beat:
            return cls(steps_per_beat, BEATS_PER_BAR, bar_offset, tuple(merged), signatures)
        return cls(steps_per_beat, first // steps_per_beat, bar_offset, tuple(changes), signatures)

    def time_signatures(self, n_steps: int) -> list[tuple[int, int, int]]:
        """The time signatures that `from_bar_lines` reads back as this grid, up to step `n_steps`.

        Returns:
            (step, numerator, denominator) in step order: a pickup is stated at step 0 with the first
            section's signature and again at `bar_offset`, where it cuts its bar short.
        """
        sections, written = self.sections(), self.section_signatures()
        stated = [(0, 0)] if self.bar_offset else []
        stated += [(step, index) for index, (step, _) in enumerate(sections) if step <= n_steps]
        return [
            (step, *(written[index] or signature_of(sections[index][1], self.steps_per_beat))) for step, index in stated
        ]

    def signatures_at(self, positions: Iterable[int]) -> list[tuple[int, int]]:
        """The time signature in force at each step of `positions` (before the first bar line: the first section's)."""
        sections = self.sections()
        written = [
            signature or signature_of(length, self.steps_per_beat)
            for signature, (_, length) in zip(self.section_signatures(), sections, strict=True)
        ]
        starts = np.array([step for step, _ in sections], dtype=np.int64)
        indices = np.maximum(np.searchsorted(starts, np.asarray(list(positions), dtype=np.int64), side="right") - 1, 0)
        return [written[index] for index in indices.tolist()]


def checked_pairs(name: str, pairs: object, parts: tuple[str, str], ranges: tuple[tuple[int, int], ...]) -> list:
    """`pairs` as a list of pairs of whole numbers, each in its range (`ranges`, both ends included), or an error
    naming `name`, the pair and its `parts`."""
    kind = f"({parts[0]}, {parts[1]})"
    if not isinstance(pairs, (list, tuple)):
        raise MusicLSTMError(f"{name} must be a tuple of {kind} pairs, got {pairs!r}")
    checked = []
    for index, pair in enumerate(pairs):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise MusicLSTMError(f"{name}[{index}] must be a {kind} pair, got {pair!r}")
        values = tuple(int(value) if isinstance(value, np.integer) else value for value in pair)
        for part, value, (low, high) in zip(parts, values, ranges, strict=True):
            check_whole_number(f"{name}[{index}] {part}", value, low, high)
        checked.append(values)
    return checked


def checked_changes(changes: object, steps_per_beat: int) -> tuple[tuple[int, int], ...]:
    """A Grid's changes as a tuple of (step, steps per bar) pairs of whole numbers in range, or a named error."""
    ranges = ((0, MAX_ROLL_STEPS), (1, MAX_BEATS_PER_BAR * steps_per_beat))
    return tuple(checked_pairs("changes", changes, ("step", "steps per bar"), ranges))


def checked_signatures(signatures: object) -> tuple[tuple[int, int], ...]:
    """A Grid's signatures as a tuple of (numerator, denominator) pairs: 1 to 255 over a power of two up to 256."""
    checked = checked_pairs("signatures", signatures, ("numerator", "denominator"), ((1, 255), (1, 256)))
    for index, (_, denominator) in enumerate(checked):
        if denominator & (denominator - 1):
            raise MusicLSTMError(
                f"signatures[{index}] denominator {denominator}: must be a power of two (2, 4, 8, ...)"
            )
    return tuple(checked)


def checked_phrase_ends(spans: object) -> tuple[tuple[int, int], ...]:
    """A Grid's phrase ends as a tuple of (first step, end step) pairs, each first before its end, increasing and
    not overlapping (one may end where the next begins), or a named error."""
    checked = checked_pairs("phrase_ends", spans, ("first step", "end step"), ((0, MAX_ROLL_STEPS),) * 2)
    for index, (first, end) in enumerate(checked):
        if first >= end:
            raise MusicLSTMError(f"phrase_ends[{index}] ({first}, {end}): its first step must come before its end")
        if index and first < checked[index - 1][1]:
            raise MusicLSTMError(
                f"phrase_ends[{index}] ({first}, {end}): begins before the phrase end before it ends "
                f"({checked[index - 1][1]}); phrase ends are increasing and do not overlap"
            )
    return tuple(checked)


def merged_spans(spans: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """Spans (first step, end step) of any order as increasing spans that do not overlap: overlapping ones joined
    (their union), ones that only touch kept apart. The phrase ends of a piece whose parts mark them each."""
    merged: list[tuple[int, int]] = []
    for first, end in sorted(spans):
        if merged and first < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((first, end))
    return tuple(merged)


def fallback_signature(steps_per_bar: int, steps_per_beat: int) -> tuple[int, int] | None:
    """`signature_of` the bar, or None where no signature gives it (a Grid can hold such a bar; no file can)."""
    try:
        return signature_of(steps_per_bar, steps_per_beat)
    except MusicLSTMError:
        return None


def bar_steps(numerator: int, denominator: int, steps_per_beat: int) -> int:
    """Steps in a bar of `numerator`/`denominator` time: n * 4 / d quarter notes, at least one step."""
    return max(1, round(numerator * 4 / denominator * steps_per_beat))


def signature_of(steps_per_bar: int, steps_per_beat: int) -> tuple[int, int]:
    """The time signature (numerator, denominator) of a bar of `steps_per_bar` steps: in quarter notes
    when whole beats, else in the longest note value that counts it exactly, else the nearest that
    reads back to the same steps.

    Raises:
        MusicLSTMError: no signature up to 255/256 gives that many steps.
    """
    denominators = [4 * 2**power for power in range(7)]
    for denominator in denominators:
        numerator, remainder = divmod(steps_per_bar * denominator, 4 * steps_per_beat)
        if not remainder and numerator <= 255:
            return numerator, denominator
    for denominator in denominators:
        numerator = round(steps_per_bar * denominator / (4 * steps_per_beat))
        if 1 <= numerator <= 255 and bar_steps(numerator, denominator, steps_per_beat) == steps_per_bar:
            return numerator, denominator
    raise MusicLSTMError(f"a bar of {steps_per_bar} steps at {steps_per_beat} per beat has no time signature to write")


COMMON_TIME = Grid()  # 4/4 from the first step at the default steps per beat: where nothing says otherwise


def as_grid(grid: Grid | int) -> Grid:
    """A Grid as given, or whole-number steps per beat read as that grid in 4/4 from the first step."""
    return grid if isinstance(grid, Grid) else Grid(grid)
