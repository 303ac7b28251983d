"""Piano facts, the user-facing error type, and the settings objects that flow from the CLI to disk.

Every constant about the keyboard or the data format lives here and nowhere else. Settings are
frozen dataclasses validated in `__post_init__`, so a bad value is refused in one place whether it
came from a flag, the Python API or a file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("musiclstm")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"

LOWEST_PITCH = 21  # A0, the piano's lowest key, as a MIDI pitch
N_KEYS = 88
HIGHEST_PITCH = LOWEST_PITCH + N_KEYS - 1  # C8

DEFAULT_STEPS_PER_BEAT = 4  # sixteenth notes: a beat is a quarter note
BENCHMARK_STEPS_PER_BEAT = 1  # the published benchmark files are sampled once per quarter note
DEFAULT_WINDOW = 64  # steps of context per training example: 4 bars of 4/4 at sixteenths
TRANSPOSE_RANGE = (-5, 6)  # semitones, both ends included

SPLITS = ("train", "valid", "test")
DEFAULT_SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
DEFAULT_SEED = 42

CORPUS_FORMAT_VERSION = 1


class MusicLSTMError(Exception):
    """A problem the user can fix: a bad path, setting or input file."""


@dataclass(frozen=True)
class CorpusConfig:
    """How a source becomes a corpus.

    `steps_per_beat` of None means the source's natural grid: 4 for MIDI and MusicXML, 1 for the
    benchmark files, whose pieces are already sampled and are taken as they are.
    `limit` keeps only the first N files (in sorted order), for quick trials.
    """

    source: str
    steps_per_beat: int | None = None
    seed: int = DEFAULT_SEED
    split_fractions: tuple[float, float, float] = DEFAULT_SPLIT_FRACTIONS
    workers: int = 1
    limit: int | None = None

    def __post_init__(self) -> None:
        if not self.source:
            raise MusicLSTMError("no source given: use 'bach', a folder of MIDI files or a benchmark file")
        if self.steps_per_beat is not None and not 1 <= self.steps_per_beat <= 96:
            raise MusicLSTMError(f"steps_per_beat must be between 1 and 96, got {self.steps_per_beat}")
        if self.workers < 1:
            raise MusicLSTMError(f"workers must be at least 1, got {self.workers}")
        if self.limit is not None and self.limit < 1:
            raise MusicLSTMError(f"limit must be at least 1, got {self.limit}")
        fractions = tuple(float(f) for f in self.split_fractions)
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
            raise MusicLSTMError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
        object.__setattr__(self, "split_fractions", fractions)

    def to_dict(self) -> dict:
        return asdict(self)
