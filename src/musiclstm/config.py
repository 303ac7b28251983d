"""Piano facts, the user-facing error type, and the settings objects that flow from the CLI to disk.

Every constant about the keyboard or the data format lives here and nowhere else. Settings are
frozen dataclasses validated in `__post_init__`, so a bad value is refused in one place whether it
came from a flag, the Python API or a file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    VERSION = version("musiclstm")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"


class MusicLSTMError(Exception):
    """A problem the user can fix: a bad path, setting or input file."""


LOWEST_PITCH = 21  # A0, the piano's lowest key, as a MIDI pitch
N_KEYS = 88
HIGHEST_PITCH = LOWEST_PITCH + N_KEYS - 1  # C8

MAX_STEPS_PER_BEAT = 96
DEFAULT_STEPS_PER_BEAT = 4  # sixteenth notes: a beat is a quarter note
BEATS_PER_BAR = 4  # pieces are written and judged in 4/4
BENCHMARK_STEPS_PER_BEAT = 1  # the published benchmark files are sampled once per quarter note
DEFAULT_WINDOW = 64  # steps of context per training example: 4 bars of 4/4 at sixteenths
DEFAULT_CHUNK = 64  # target frames per training sequence of objective `all` (measured: README)
TRANSPOSE_RANGE = (-5, 6)  # semitones, both ends included

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
AUTO_KEY = "auto"  # as a key: the one that best fits each piece's primer
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # the 12 roots as menus show them
SCALES = {  # semitones above the root
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}


def key_root(name: str) -> int:
    """The pitch class (0 = C .. 11 = B) of a key name such as 'C', 'F#', 'Bb' or 'e♭'.

    Raises:
        MusicLSTMError: the name is not a letter A-G with an optional sharp or flat.
    """
    letter, accidental = name[:1].upper(), name[1:]
    if letter not in PITCH_CLASSES or accidental not in ACCIDENTALS:
        raise MusicLSTMError(f"unknown key '{name}': use a letter A-G with an optional # or b (C, F#, Bb, ...)")
    return (PITCH_CLASSES[letter] + ACCIDENTALS[accidental]) % 12


def scale_pitch_classes(key: str, scale: str) -> frozenset[int]:
    """The pitch classes (0 = C .. 11 = B) of a key and scale, such as F# major."""
    if scale not in SCALES:
        raise MusicLSTMError(f"unknown scale '{scale}': choose one of {', '.join(SCALES)}")
    root = key_root(key)
    return frozenset((root + step) % 12 for step in SCALES[scale])


CHOICES = ("threshold", "sample")


@dataclass(frozen=True)
class Strategy:
    """A preset of the specification's table: a temperature, and whether and how the key is kept."""

    temperature: float
    scale: str | None  # None: no key constraint


STRATEGIES = {
    "conservative": Strategy(0.5, "major"),
    "balanced": Strategy(0.8, "major"),
    "creative": Strategy(1.2, "major"),
    "free": Strategy(1.0, None),
    "jazz": Strategy(0.9, "blues"),
}


SPLITS = ("train", "valid", "test")
DEFAULT_SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
DEFAULT_SEED = 42

CORPUS_FORMAT_VERSION = 1

BUNDLED_MODEL = Path(__file__).parent / "models" / "bach"  # the seed preset trained on the chorales


def bundled_model() -> Path:
    """The model folder shipped inside the package (see its MODEL_CARD.md)."""
    if not (BUNDLED_MODEL / "config.json").is_file():
        raise MusicLSTMError(
            f"{BUNDLED_MODEL}: the bundled model is missing from this installation; name one with --model"
        )
    return BUNDLED_MODEL


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
        if self.steps_per_beat is not None and not 1 <= self.steps_per_beat <= MAX_STEPS_PER_BEAT:
            raise MusicLSTMError(
                f"steps_per_beat must be between 1 and {MAX_STEPS_PER_BEAT}, got {self.steps_per_beat}"
            )
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


MODEL_FORMAT_VERSION = 1
OBJECTIVES = ("last", "all")
CONTEXTS = ("window", "stateful")  # how a model reads the past: the last `window` steps, or all of it
CONTEXT_TAUGHT_BY = {"last": "window", "all": "stateful"}
DEFAULT_BATCH_SIZE = {"last": 64, "all": 16}  # windows (the seed's), or chunks of DEFAULT_CHUNK frames (measured)
# An epoch of "all" is a few dozen updates, where one of "last" is hundreds: with the seed's patience
# of 5 epochs, "all" stopped while still improving (README), so it waits longer.
DEFAULT_PATIENCE = {"last": 5, "all": 20}
DEFAULT_LR_PATIENCE = {"last": 3, "all": 10}
PRECISIONS = ("32", "bf16-mixed")


MAX_LAYER_SIZE = 8192  # units, window steps: far above any useful model, far below exhausting memory


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape: LSTM -> LSTM -> Dense ReLU -> Dropout -> Dense 88 (logits).

    `input_dropout` is Keras's `dropout` on each LSTM layer's input, one mask per sequence;
    `recurrent_dropout` is realised as DropConnect on the hidden-to-hidden weights, which keeps
    the fused LSTM kernel (an exact per-step mask needs a Python loop, measured 4x slower).
    """

    window: int = DEFAULT_WINDOW  # steps of context per example
    lstm_units: int = 512
    dense_units: int = 256
    input_dropout: float = 0.3
    recurrent_dropout: float = 0.2
    dense_dropout: float = 0.4

    def __post_init__(self) -> None:
        for name in ("window", "lstm_units", "dense_units"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_LAYER_SIZE:
                raise MusicLSTMError(f"{name} must be a whole number from 1 to {MAX_LAYER_SIZE}, got {value!r}")
        for name in ("input_dropout", "recurrent_dropout", "dense_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise MusicLSTMError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


MODEL_PRESETS = {
    "seed": ModelConfig(),  # the specification's architecture, exactly
    "small": ModelConfig(lstm_units=64, dense_units=32),  # quick runs and tests
}


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: the seed's settings (Adam 1e-3, 30 epochs, early stopping, plateau schedule),
    with objective `all` by default, which reaches a lower validation NLL per minute (README)."""

    objective: str = "all"  # "all": every step of a chunk is a target; "last": the step after each window (the seed)
    chunk: int = DEFAULT_CHUNK  # target frames per training sequence of objective "all"
    grad_clip: float | None = None  # clip the gradient's norm to this (None: no clipping)
    pos_weight: float = 10.0  # loss weight of a sounding note; 1 gives calibrated probabilities
    lr: float = 1e-3
    batch_size: int | None = None  # None: the measured default of the objective (DEFAULT_BATCH_SIZE)
    epochs: int = 30
    early_stop_patience: int | None = None  # epochs without a better val_loss; None: the objective's default
    lr_patience: int | None = None  # epochs before the learning rate halves; None: the objective's default
    lr_factor: float = 0.5
    min_lr: float = 1e-6
    precision: str = "32"
    seed: int = DEFAULT_SEED
    max_minutes: float | None = None
    transpose: bool = False
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise MusicLSTMError(f"unknown objective '{self.objective}': choose one of {', '.join(OBJECTIVES)}")
        for name, defaults in (
            ("batch_size", DEFAULT_BATCH_SIZE),
            ("early_stop_patience", DEFAULT_PATIENCE),
            ("lr_patience", DEFAULT_LR_PATIENCE),
        ):
            if getattr(self, name) is None:
                object.__setattr__(self, name, defaults[self.objective])
        if self.precision not in PRECISIONS:
            raise MusicLSTMError(f"unknown precision '{self.precision}': choose one of {', '.join(PRECISIONS)}")
        if self.pos_weight <= 0 or self.lr <= 0:
            raise MusicLSTMError(f"pos_weight and lr must be positive, got {self.pos_weight} and {self.lr}")
        for name in ("batch_size", "epochs", "devices", "num_nodes", "chunk"):
            if getattr(self, name) < 1:
                raise MusicLSTMError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise MusicLSTMError(f"grad_clip must be positive, got {self.grad_clip}")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise MusicLSTMError(f"max_minutes must be positive, got {self.max_minutes}")

    def to_dict(self) -> dict:
        return asdict(self)
