"""Piano facts, the user-facing error type, and the settings objects that flow from the CLI to disk.

Every constant about the keyboard or the data format lives here and nowhere else. Settings are
frozen dataclasses validated in `__post_init__`, so a bad value is refused in one place whether it
came from a flag, the Python API or a file. A field made with `setting(...)` carries its own help
text (and choices) in its metadata: the command line builds its flags from them, so a new setting
is one line here.
"""

from __future__ import annotations

import argparse
import math
import numbers
import secrets
import typing
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

try:
    VERSION = version("musiclstm")
except PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"


class MusicLSTMError(Exception):
    """A problem the user can fix: a bad path, setting or input file."""


MAX_SEED = 2**32 - 1  # the most numpy's legacy seeding and Lightning's seed_everything take


def check_whole_number(name: str, value: object, low: int, high: int) -> int:
    """Refuse anything but a whole number from `low` to `high`, naming the setting (a bool, 64.5 or "64" too).

    Raises:
        MusicLSTMError: `value` is not an int in [low, high].
    """
    if not isinstance(value, int) or isinstance(value, bool):
        raise MusicLSTMError(f"{name} must be a whole number from {low:,} to {high:,}, got {value!r}")
    if not low <= value <= high:
        raise MusicLSTMError(f"{name} must be from {low:,} to {high:,}, got {value:,}")
    return value


def draw_seed() -> int:
    """A seed for a user who gave none: drawn from the system's entropy, then recorded so the work can be made again."""
    return secrets.randbelow(2**31)


def check_seed(seed: object, name: str = "seed") -> int:
    """A random seed as every generator here takes it: a whole number from 0 to MAX_SEED."""
    return check_whole_number(name, seed, 0, MAX_SEED)


def check_one_of(name: str, value: object, choices, what: str | None = None) -> str:
    """Refuse anything but one of `choices` (strings), naming the setting (`what`, default its name).

    Raises:
        MusicLSTMError: `value` is not one of `choices`.
    """
    if not isinstance(value, str) or value not in choices:
        raise MusicLSTMError(f"unknown {what or name} {value!r}: choose one of {', '.join(choices)}")
    return value


LOWEST_PITCH = 21  # A0, the piano's lowest key, as a MIDI pitch
N_KEYS = 88
HIGHEST_PITCH = LOWEST_PITCH + N_KEYS - 1  # C8
KEY_PITCH_CLASSES = tuple((LOWEST_PITCH + key_index) % 12 for key_index in range(N_KEYS))  # column k's: A0 is 9

MAX_STEPS_PER_BEAT = 96
DEFAULT_STEPS_PER_BEAT = 4  # sixteenth notes: a beat is a quarter note
BEATS_PER_BAR = 4  # pieces are written and judged in 4/4
BENCHMARK_STEPS_PER_BEAT = 1  # the published benchmark files are sampled once per quarter note
DEFAULT_WINDOW = 64  # steps of context per training example: 4 bars of 4/4 at sixteenths
DEFAULT_CHUNK = 64  # target frames per training sequence of objective `all` (measured: docs, benchmarks)
TRANSPOSE_RANGE = (-5, 6)  # semitones, both ends included

PITCH_CLASSES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
ACCIDENTALS = {"": 0, "#": 1, "♯": 1, "b": -1, "♭": -1}
AUTO_KEY = "auto"  # as a key: the one that best fits each piece's primer
MODE_SCALE = "mode"  # as a scale: the key's own mode, major or `minor_raised` (a key named "A minor" is minor)
MODE_SCALES = {"major": "major", "minor": "minor_raised"}  # the scale each mode of MODE_SCALE plays
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # the 12 roots as menus show them
SCALES = {  # semitones above the root
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "harmonic_minor": (0, 2, 3, 5, 7, 8, 11),
    "minor_raised": (0, 2, 3, 5, 7, 8, 9, 10, 11),  # minor with its raised 6th and 7th: what a minor chorale plays
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "minor_pentatonic": (0, 3, 5, 7, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "chromatic": tuple(range(12)),
}


def key_root(name: str) -> int:
    """The pitch class (0 = C .. 11 = B) of a key name such as 'C', 'F#', 'Bb', 'e♭' or 'A minor'.

    Raises:
        MusicLSTMError: the name is not a letter A-G with an optional sharp or flat, then an optional mode.
    """
    root, _ = key_mode(name)
    letter, accidental = root[:1].upper(), root[1:]
    if letter not in PITCH_CLASSES or accidental not in ACCIDENTALS:
        raise MusicLSTMError(
            f"unknown key '{name}': use a letter A-G with an optional # or b, and major or minor (C, F#, Bb minor, ...)"
        )
    return (PITCH_CLASSES[letter] + ACCIDENTALS[accidental]) % 12


def key_mode(name: str) -> tuple[str, str]:
    """A key name's root and mode: 'A minor' is ('A', 'minor'); a name without a mode is major."""
    root, _, mode = name.strip().partition(" ")
    mode = mode.strip().lower() or "major"
    if mode not in MODE_SCALES:
        raise MusicLSTMError(f"unknown mode '{mode}' in key '{name}': choose major or minor")
    return root, mode


def scale_pitch_classes(key: str, scale: str) -> frozenset[int]:
    """The pitch classes (0 = C .. 11 = B) of a key and scale, such as F# major; the scale `mode` takes
    the key's own mode (A minor: minor with its raised 6th and 7th)."""
    if scale == MODE_SCALE:
        scale = MODE_SCALES[key_mode(key)[1]]
    if scale not in SCALES:
        raise MusicLSTMError(f"unknown scale '{scale}': choose one of {', '.join((*SCALES, MODE_SCALE))}")
    root = key_root(key)
    return frozenset((root + step) % 12 for step in SCALES[scale])


CHOICES = ("threshold", "sample")
TEMPERED = ("step", "key")  # what the temperature acts on: whole steps, or each key's logit
MAX_PHRASE_BARS = 64  # the longest phrase --phrase-bars places
STEP_CANDIDATES = 16  # whole steps drawn per step where the temperature acts on steps (docs: voices)
# how each head chooses notes unless told: a NADE's greedy frame holds chords for bars (docs: benchmarks),
# independent keys keep the seed's threshold
HEAD_CHOICE = {"independent": "threshold", "nade": "sample"}


@dataclass(frozen=True)
class Strategy:
    """A preset of the specification's table: a temperature, and whether and how the key is kept."""

    temperature: float
    scale: str | None  # None: no key constraint


STRATEGIES = {
    # no key mask: the music measures closer to the real music without one (docs: benchmarks, "Voices")
    "conservative": Strategy(0.5, None),
    "balanced": Strategy(0.8, None),
    "creative": Strategy(1.2, None),
    "free": Strategy(1.0, None),
    "jazz": Strategy(0.9, "blues"),
}


def setting(
    default=None, help: str = "", choices=None, default_text: str | None = None, flag: str | None = None, **more
):
    """A dataclass field whose metadata gives the command line its flag: help, choices, how to show the default.

    A `default` of dataclasses.MISSING makes a field without a default, whose flag is required.
    `default_text` replaces the default in the help (for a None whose meaning depends on another
    setting); `flag` replaces the flag derived from the field's name; `more` goes to argparse as is.
    """
    metadata = dict(help=help, choices=choices, default_text=default_text, flag=flag, argparse=more)
    return field(default=default, metadata=metadata)


def with_values(settings_class: type, values: dict, base: object | None = None, kind: str = "generation"):
    """A settings object of `settings_class` made from `values` (over `base`, if given), a name that is no
    field of it refused by name ("unknown generation setting: colour"): the one check of unknown
    settings, for the API's keyword arguments."""
    unknown = sorted(set(values) - {field.name for field in fields(settings_class)})
    if unknown:
        raise MusicLSTMError(f"unknown {kind} setting: {', '.join(unknown)}")
    return replace(base, **values) if base is not None else settings_class(**values)


def flag_name(setting_field: Field) -> str:
    """The command-line flag of a settings field: its own `flag`, else `--lstm-units` for `lstm_units`."""
    return setting_field.metadata.get("flag") or "--" + setting_field.name.replace("_", "-")


def add_flags(parser: argparse.ArgumentParser, settings_class: type, leave_out: tuple[str, ...] = ()) -> None:
    """Give a parser one flag per field of a settings dataclass that has help text (see `setting`), but those in
    `leave_out`: its type from the annotation, its choices and help from the field, default None (so that only
    what the user gave overrides the dataclass's defaults); required where the field has no default."""
    hints = typing.get_type_hints(settings_class)
    for setting_field in fields(settings_class):
        meta, kind = setting_field.metadata, hints[setting_field.name]
        if not meta.get("help") or setting_field.name in leave_out:
            continue
        if type(None) in typing.get_args(kind):  # X | None
            kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
        default = setting_field.default
        shown = meta["default_text"] or (None if default in (None, MISSING, False) else default)
        options = dict(
            dest=setting_field.name, help=meta["help"] + (f" (default {shown})" if shown is not None else "")
        )
        if kind is bool:
            options.update(action=argparse.BooleanOptionalAction if default is True else "store_true", default=None)
        elif typing.get_origin(kind) is tuple:
            options.update(type=typing.get_args(kind)[0], nargs=len(typing.get_args(kind)))
        else:
            options.update(type=kind, choices=meta["choices"])
        options.update(required=default is MISSING, **meta["argparse"])
        parser.add_argument(flag_name(setting_field), **options)


def given_settings(args: argparse.Namespace, settings_class: type) -> dict:
    """The fields of a settings dataclass that the user gave on the command line (`add_flags`'s, not None)."""
    names = {setting_field.name for setting_field in fields(settings_class)}
    return {name: value for name, value in vars(args).items() if name in names and value is not None}


def settings_from_flags(args: argparse.Namespace, settings_class: type):
    """The settings object of what the user gave, checked (by its `__post_init__`) before any work."""
    return settings_class(**given_settings(args, settings_class))


SPLITS = ("train", "valid", "test")
DEFAULT_SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
DEFAULT_SEED = 42

CORPUS_FORMAT_VERSION = 2  # 2: struck keys beside the sounding ones, and each piece's metre

BUNDLED_MODEL = Path(__file__).parent / "models" / "bach"  # the seed preset trained on the chorales
STUDIO_PAGE = str(Path(__file__).parent / "pages" / "studio.py")  # the Streamlit page that `musiclstm demo` serves
LISTENING_PAGE = str(Path(__file__).parent / "pages" / "listening.py")  # served by `musiclstm listen serve`


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
    `limit` keeps only the first N files (in sorted order), for quick trials. `pedal` False reads MIDI
    files without their sustain pedal (each note ends at its key's release).
    """

    source: str = setting(
        MISSING,
        "'bach' (the chorales in music21's corpus), a folder of .mid/.midi files (searched recursively), "
        "or a benchmark file (.pickle/.pkl/.json with train/valid/test; its split is kept)",
    )
    steps_per_beat: int | None = setting(
        None,
        "grid steps per quarter note",
        default_text=f"{DEFAULT_STEPS_PER_BEAT} for MIDI and scores; benchmark files are taken as sampled, "
        f"{BENCHMARK_STEPS_PER_BEAT} per beat",
    )
    seed: int = setting(DEFAULT_SEED, "seed of the split by piece")
    split_fractions: tuple[float, float, float] = setting(
        DEFAULT_SPLIT_FRACTIONS,
        "split fractions by piece",
        default_text="0.70 0.15 0.15",
        flag="--split",
        metavar=("TRAIN", "VALID", "TEST"),
    )
    workers: int = setting(1, "processes reading files in parallel")
    limit: int | None = setting(None, "read only the first N files (sorted), for a quick try")
    pedal: bool = setting(True, "apply MIDI files' sustain pedal: a note released under it sounds until it is lifted")

    def __post_init__(self) -> None:
        if not isinstance(self.pedal, bool):
            raise MusicLSTMError(f"pedal must be True (apply the sustain pedal) or False, got {self.pedal!r}")
        if not self.source:
            raise MusicLSTMError("no source given: use 'bach', a folder of MIDI files or a benchmark file")
        if self.steps_per_beat is not None and not 1 <= self.steps_per_beat <= MAX_STEPS_PER_BEAT:
            raise MusicLSTMError(
                f"steps_per_beat must be between 1 and {MAX_STEPS_PER_BEAT}, got {self.steps_per_beat}"
            )
        check_seed(self.seed)
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
OBJECTIVES = ("last", "all", "stateful")
HEADS = ("independent", "nade")  # the output layer: 88 independent keys, or decided one by one (heads.py)
KEY_ORDERS = ("high-to-low", "low-to-high")  # the order a NADE head decides the keys of a step
CONTEXTS = ("window", "stateful")  # how a model reads the past: the last `window` steps, or all of it
CONTEXT_TAUGHT_BY = {"last": "window", "all": "stateful", "stateful": "stateful"}
# windows (the seed's), or chunks of DEFAULT_CHUNK frames: 8 reached a lower validation NLL than 4 or 16 (docs)
DEFAULT_BATCH_SIZE = {"last": 64, "all": 8, "stateful": 8}
# the seed's Adam rate for its windows; chunks of 8 learn fastest at 3e-3 (docs: benchmarks), with the output
# biases started at the keys' log-odds
DEFAULT_LR = {"last": 1e-3, "all": 3e-3, "stateful": 3e-3}
# An epoch of "all" is a few dozen updates, where one of "last" is hundreds: with the seed's patience
# of 5 epochs, "all" stopped while still improving (docs: benchmarks), so it waits longer.
DEFAULT_PATIENCE = {"last": 5, "all": 20, "stateful": 20}
DEFAULT_LR_PATIENCE = {"last": 3, "all": 10, "stateful": 10}
PRECISIONS = ("32", "bf16-mixed")
# how the learning rate moves: along a half cosine to min_lr at the run's end (its budget or last epoch), or
# halved after lr_patience epochs without a better validation NLL (the only one when a run has no end)
SCHEDULES = ("cosine", "plateau")
EPOCH_CAP = 10_000  # epochs when none are given: the time budget or early stopping ends training long before


MAX_LAYER_SIZE = 8192  # units, window steps: far above any useful model, far below exhausting memory


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape: LSTM -> LSTM -> Dense ReLU -> Dropout -> Dense 88 (logits).

    `input_dropout` is Keras's `dropout` on each LSTM layer's input, one mask per sequence;
    `recurrent_dropout` is realised as DropConnect on the hidden-to-hidden weights, which keeps
    the fused LSTM kernel (an exact per-step mask needs a Python loop, measured 4x slower).
    """

    window: int = setting(DEFAULT_WINDOW, "steps of context per example")
    lstm_units: int = setting(512, "units per LSTM layer", default_text="the preset's; seed 512")
    dense_units: int = setting(256, "units of the dense ReLU layer", default_text="the preset's; seed 256")
    input_dropout: float = setting(0.5, "dropout on each LSTM's input", default_text="0.5; seed 0.3")
    recurrent_dropout: float = setting(
        0.5, "DropConnect on the recurrent weights (see the docs' errata)", default_text="0.5; seed 0.2"
    )
    dense_dropout: float = setting(0.5, "dropout after the dense layer", default_text="0.5; seed 0.4")
    head: str = setting(
        "nade",
        "output head: 'nade' (each key given the keys decided before it) or 'independent' (the seed's 88 sigmoids)",
        default_text="nade; the seed preset's: independent",
        choices=HEADS,
    )
    nade_units: int = setting(150, "NADE head: hidden units shared by the 88 conditionals")
    key_order: str = setting(
        "high-to-low", "NADE head: the order the keys of a step are decided in", choices=KEY_ORDERS
    )
    inputs: tuple[str, ...] = setting(
        ("keys", "struck", "metre", "phrase"),
        "what the network reads per step, in order: keys (sounding), struck (keys struck), metre (the step's "
        "sixteenth of the beat and beat of the bar) or metre-flags, phrase (how near the next marked phrase "
        "end is); the seed's network reads keys alone",
        nargs="+",
    )
    strikes: bool = setting(True, "predict which held keys are struck again (a head beside the sounding keys' head)")
    head_reads_previous: bool = setting(
        True,
        "the output head reads the keys sounding the step before beside the network's features: where each "
        "voice was, one layer from the choice of where it goes",
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))  # config.json holds a list
        if not self.inputs or not all(isinstance(name, str) for name in self.inputs):
            raise MusicLSTMError(f"inputs must name at least one input feature, got {self.inputs!r}")
        if self.head not in HEADS:
            raise MusicLSTMError(f"unknown head '{self.head}': choose one of {', '.join(HEADS)}")
        if self.key_order not in KEY_ORDERS:
            raise MusicLSTMError(f"unknown key order '{self.key_order}': choose one of {', '.join(KEY_ORDERS)}")
        for name in ("window", "lstm_units", "dense_units", "nade_units"):
            value = getattr(self, name)
            if not isinstance(value, int) or not 1 <= value <= MAX_LAYER_SIZE:
                raise MusicLSTMError(f"{name} must be a whole number from 1 to {MAX_LAYER_SIZE}, got {value!r}")
        for name in ("input_dropout", "recurrent_dropout", "dense_dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise MusicLSTMError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


SEED_DROPOUTS = {"input_dropout": 0.3, "recurrent_dropout": 0.2, "dense_dropout": 0.4}  # the specification's
MODEL_PRESETS = {
    "nade": ModelConfig(),  # the default: the seed's trunk with the NADE head (docs: train, "The output head")
    "seed": ModelConfig(
        head="independent", inputs=("keys",), strikes=False, head_reads_previous=False, **SEED_DROPOUTS
    ),  # the specification's network, exactly
    "small": ModelConfig(lstm_units=64, dense_units=32, head="independent", **SEED_DROPOUTS),  # quick runs, tests
}


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: AdamW with objective `all` by default, which reaches a lower validation NLL per
    minute (docs: benchmarks). A run with an end (`max_minutes`, `epochs`) lowers the rate along a half cosine
    to that end; a run with none halves it on a plateau of the validation NLL and stops early. What is
    validated and saved is a moving average of the weights (`average`), the best validation NLL's.

    `lr`, `batch_size`, `early_stop_patience` and `lr_patience` of None mean the objective's own default,
    filled in by `resolved()` when training starts, so `replace(TrainConfig(), objective="last")` is
    the seed's 1e-3 / 64 / 5 / 3.
    """

    objective: str = setting(
        "all",
        "'all': every step of a chunk is a target, about 2 LSTM steps per target; "
        "'last' (the seed's): predict the step after each window, 64 steps per target; "
        "'stateful': pieces read whole in chunks, the state carried (truncated BPTT), about 1 step per target",
        choices=OBJECTIVES,
    )
    chunk: int = setting(
        DEFAULT_CHUNK, "objectives 'all' and 'stateful': target frames per training sequence (per update)"
    )
    grad_clip: float | None = setting(None, "clip the gradient norm to this", default_text="no clipping")
    pos_weight: float = setting(
        10.0,
        "independent head: loss weight of a sounding note (NLL is scored on calibrated probabilities); "
        "the NADE head trains on the exact NLL",
        default_text="10, the seed's",
    )
    lr: float | None = setting(
        None, "Adam learning rate", default_text="3e-3 for 'all' and 'stateful', the seed's 1e-3 for 'last'"
    )
    batch_size: int | None = setting(
        None, "sequences per batch", default_text="8 chunks for 'all' and 'stateful', 64 windows for 'last'"
    )
    epochs: int | None = setting(
        None,
        "most epochs (the seed's: 30)",
        default_text=f"no cap of its own: early stopping or --max-minutes ends training, at most {EPOCH_CAP:,}",
    )
    early_stop_patience: int | None = setting(
        None, "epochs without a better validation NLL before stopping", default_text="20 for 'all', 5 for 'last'"
    )
    lr_patience: int | None = setting(
        None, "epochs without a better validation NLL before the rate halves", default_text="10 for 'all', 3 for 'last'"
    )
    lr_factor: float = 0.5
    min_lr: float = 1e-6
    schedule: str = setting(
        "cosine",
        "'cosine': the rate falls along a half cosine to nothing at the run's end (--max-minutes or --epochs), "
        "no early stopping; 'plateau': halved when the validation NLL stalls, with early stopping "
        "(also what a run with no end uses)",
        choices=SCHEDULES,
    )
    weight_decay: float = setting(0.0, "AdamW's decoupled weight decay")
    average: bool = setting(
        True,
        "validate, save and export a moving average of the weights (its time constant one epoch's updates) "
        "instead of the last update's",
    )
    precision: str = setting("32", "'32' or 'bf16-mixed' autocast", choices=PRECISIONS)
    seed: int = setting(DEFAULT_SEED, "random seed")
    max_minutes: float | None = setting(None, "stop after this much training time", default_text="no limit")
    start_biases: bool = setting(
        True, "start each key's output bias at its log-odds in the training split (else at 0, as Keras)"
    )
    transpose: bool = setting(
        False, "transpose each training example by -5..+6 semitones (all twelve keys), keeping notes on the keyboard"
    )
    accelerator: str = setting("auto", "'cpu', 'gpu', 'auto' ... (Lightning's)")
    devices: int = setting(1, "processes per node; more than 1 trains with DDP")
    num_nodes: int = setting(1, "machines, for DDP across nodes")

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise MusicLSTMError(f"unknown objective '{self.objective}': choose one of {', '.join(OBJECTIVES)}")
        if self.precision not in PRECISIONS:
            raise MusicLSTMError(f"unknown precision '{self.precision}': choose one of {', '.join(PRECISIONS)}")
        check_seed(self.seed)
        if not 0 < self.pos_weight < math.inf or (self.lr is not None and not 0 < self.lr < math.inf):
            raise MusicLSTMError(f"pos_weight and lr must be positive, got {self.pos_weight} and {self.lr}")
        for name in ("batch_size", "epochs", "devices", "num_nodes", "chunk", "early_stop_patience", "lr_patience"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MusicLSTMError(f"{name} must be at least 1, got {value}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise MusicLSTMError(f"grad_clip must be positive, got {self.grad_clip}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise MusicLSTMError(f"max_minutes must be positive, got {self.max_minutes}")
        if self.schedule not in SCHEDULES:
            raise MusicLSTMError(f"unknown schedule '{self.schedule}': choose one of {', '.join(SCHEDULES)}")
        if not 0 <= self.weight_decay < math.inf:
            raise MusicLSTMError(f"weight_decay must be 0 or more, got {self.weight_decay}")

    def resolved(self) -> TrainConfig:
        """The same settings with the objective's defaults filled in where a field is None."""
        defaults = {
            "batch_size": DEFAULT_BATCH_SIZE,
            "lr": DEFAULT_LR,
            "early_stop_patience": DEFAULT_PATIENCE,
            "lr_patience": DEFAULT_LR_PATIENCE,
        }
        filled = {name: table[self.objective] for name, table in defaults.items() if getattr(self, name) is None}
        if self.schedule == "cosine" and not (self.max_minutes or self.epochs):
            filled["schedule"] = "plateau"  # a cosine needs an end to fall to
        return replace(self, **filled)

    def to_dict(self) -> dict:
        return asdict(self)


MAX_LENGTH = 100_000  # steps per piece
MAX_OUTPUTS = 256  # pieces per batch
MAX_TOTAL_STEPS = 10_000_000  # steps of all pieces of one batch: their rolls take 0.9 GB
TEMPO_RANGE_BPM = (20, 400)


def check_number(
    name: str,
    value: object,
    low: float,
    high: float,
    range_text: str,
    low_included: bool = True,
    high_included: bool = True,
) -> float:
    """A real number from `low` to `high` as a float; anything else (a bool, a string, NaN) is refused by `name`."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise MusicLSTMError(f"{name} must be a number {range_text}, got {value!r}")
    above = low <= value if low_included else low < value
    below = value <= high if high_included else value < high
    if not (above and below):
        raise MusicLSTMError(f"{name} must be {range_text}, got {value}")
    return float(value)


def check_tempo(tempo_bpm: object) -> float:
    """A tempo a piece may be written at, in beats per minute, as a float."""
    low, high = TEMPO_RANGE_BPM
    return check_number("tempo", tempo_bpm, low, high, f"between {low} and {high} beats per minute")


DEFAULT_TEMPO_BPM = 100.0
HARMONIZE_LOOKAHEAD = 16  # harmonizations drawn side by side per version (docs: harmonize)
INFILL_PARTICLES = 16  # drafts of a gap drawn side by side per version (docs: infill)
INFILL_JOIN_STEPS = 16  # real steps after a gap that weigh its drafts (docs: infill)


@dataclass(frozen=True)
class GenerationSettings:
    """How pieces are composed and written; saved beside them. `temperature` and `scale` of None take the strategy's."""

    length: int = setting(256, "steps to generate", default_text="256: 16 bars at 4 steps per beat")
    strategy: str = setting(
        "balanced",
        "the specification's presets: conservative 0.5, balanced 0.8, creative 1.2 (no key mask: --scale sets one), "
        "free 1.0 (no key), jazz 0.9 (blues)",
        choices=tuple(STRATEGIES),
    )
    temperature: float | None = setting(None, "below 1 plays safer, above 1 bolder", default_text="the strategy's")
    temperature_on: str = setting(
        "step",
        "'step': a NADE head's whole steps are tempered, p(step)^(1/T), so a chord is one choice; "
        "'key': each key's logit is divided by the temperature (the specification's)",
        choices=TEMPERED,
    )
    avoid_parallels: bool = setting(
        True,
        "of the whole steps a NADE head draws each step, keep none that moves two of four voices in parallel "
        "fifths or octaves where another drawn does not (the counterpoint rule Bach keeps)",
    )
    keep_voices: bool = setting(
        True,
        "generate: of the whole steps a NADE head draws each step, prefer those sounding as many keys as its "
        "primer does most often (its voices), so a voice that drops out comes back",
    )
    key: str = setting(
        AUTO_KEY, "root of the key: C, C#, Db, ... B, or auto: the key that best fits each piece's primer"
    )
    scale: str | None = setting(
        None,
        f"{MODE_SCALE} (major, or minor with its raised 6th and 7th, as the key is), " + ", ".join(SCALES),
        default_text="the strategy's",
    )
    choose: str | None = setting(
        None,
        "'threshold': every key above --threshold; 'sample': a Bernoulli draw per key",
        default_text="the model's head's: sample for nade, threshold (the seed's) for independent",
        choices=CHOICES,
    )
    threshold: float = setting(0.5, "probability a key must exceed")
    top_k: int = setting(
        3,
        "independent head: notes for a step that would be silent, or sound only a melody kept on top, in the key "
        "(a NADE head's silence is its own)",
    )
    max_notes: int | None = setting(None, "at most this many notes per step", default_text="no cap")
    phrase_bars: int | None = setting(
        None,
        "bars per phrase: a phrase end (a held, cadencing chord, written as a fermata) on the half bar of every "
        "Nth bar after the primer's last one; 0 places none; for a model that reads phrase ends",
        default_text="the model's training music's own (2 for the chorales)",
    )
    num_outputs: int = setting(1, "pieces to make in one batch")
    context: str | None = setting(
        None, "'stateful' or 'window'", choices=CONTEXTS, default_text="the context the model's training taught"
    )
    precision: str = setting(
        "32",
        "'bf16-mixed': bf16 autocast, about 2x faster for window context on CPUs with bf16 units; "
        "a near-tie may then fall the other way",
        choices=PRECISIONS,
    )
    seed: int | None = setting(
        None, "random seed; the same seed and settings give the same pieces", default_text="one is drawn and saved"
    )
    tempo_bpm: float = setting(DEFAULT_TEMPO_BPM, "beats per minute of the written pieces", flag="--tempo")

    def __post_init__(self) -> None:
        check_one_of("strategy", self.strategy, STRATEGIES)
        check_whole_number("length", self.length, 1, MAX_LENGTH)
        check_whole_number("num_outputs", self.num_outputs, 1, MAX_OUTPUTS)
        check_whole_number("top_k", self.top_k, 0, N_KEYS)
        if self.max_notes is not None:
            check_whole_number("max_notes", self.max_notes, 1, N_KEYS)
        if self.phrase_bars is not None:
            check_whole_number("phrase_bars", self.phrase_bars, 0, MAX_PHRASE_BARS)
        if self.temperature is not None:
            temperature = check_number("temperature", self.temperature, 0, math.inf, "above 0 and finite", False, False)
            object.__setattr__(self, "temperature", temperature)
        threshold = check_number("threshold", self.threshold, 0, 1, "between 0 and 1", False, False)
        object.__setattr__(self, "threshold", threshold)
        object.__setattr__(self, "tempo_bpm", check_tempo(self.tempo_bpm))
        if self.length * self.num_outputs > MAX_TOTAL_STEPS:
            raise MusicLSTMError(
                f"num_outputs x length = {self.num_outputs:,} x {self.length:,} steps is over the limit of "
                f"{MAX_TOTAL_STEPS:,} steps in one batch (their rolls alone would take "
                f"{self.length * self.num_outputs * N_KEYS / 1e9:.1f} GB): make fewer or shorter pieces"
            )
        if self.choose is not None:
            check_one_of("choose", self.choose, CHOICES, "way to choose notes")
        check_one_of("temperature_on", self.temperature_on, TEMPERED, "thing to temper")
        for name in ("avoid_parallels", "keep_voices"):
            if not isinstance(getattr(self, name), bool):
                raise MusicLSTMError(f"{name} must be True or False, got {getattr(self, name)!r}")
        check_one_of("precision", self.precision, PRECISIONS)
        if self.context is not None:
            check_one_of("context", self.context, CONTEXTS)
        if not isinstance(self.key, str):
            raise MusicLSTMError(f"key must be a key name (C, F#, Bb, ...) or {AUTO_KEY}, got {self.key!r}")
        if self.scale is not None:
            check_one_of("scale", self.scale, (MODE_SCALE, *SCALES))
        scale_pitch_classes(self.fixed_key, self.effective_scale or "chromatic")  # refuses an unknown key or scale now
        if self.seed is None:
            object.__setattr__(self, "seed", draw_seed())
        check_seed(self.seed)

    @property
    def effective_temperature(self) -> float:
        return self.temperature if self.temperature is not None else STRATEGIES[self.strategy].temperature

    @property
    def effective_scale(self) -> str | None:
        return self.scale if self.scale is not None else STRATEGIES[self.strategy].scale

    @property
    def fixed_key(self) -> str:
        """The key asked for, with C standing in for `auto` where there is no primer to fit."""
        return "C" if self.key == AUTO_KEY else self.key

    def to_dict(self) -> dict:
        return asdict(self)


MAX_STUDY_PIECES, MAX_STUDY_BARS = 500, 64


@dataclass(frozen=True)
class StudyConfig:
    """What a listening study holds and where: `pieces` generated clips of `bars` bars by `model`, as many real
    ones from `data`, who made the real music (None: the corpus's composer), the SoundFont that renders them
    all. A seed of None is drawn and recorded."""

    out: str = setting(MISSING, "the study folder to write (must not exist or be empty)")
    model: str | None = setting(None, "a run or model folder", default_text="the bundled Bach model")
    data: str | None = setting(None, "the corpus whose held-out pieces give the real clips", default_text="the model's")
    pieces: int = setting(20, "generated clips, and as many real")
    bars: int = setting(16, "bars per clip")
    seed: int | None = setting(None, "random seed of the music and the real passages", default_text="drawn")
    real_name: str | None = setting(None, "who made the real music, for 'X or computer?'", default_text="the corpus's")
    soundfont: str | None = setting(None, "a .sf2 General MIDI SoundFont", default_text="pretty_midi's")

    def __post_init__(self) -> None:
        check_whole_number("pieces", self.pieces, 1, MAX_STUDY_PIECES)
        check_whole_number("bars", self.bars, 1, MAX_STUDY_BARS)
        if self.seed is None:
            object.__setattr__(self, "seed", draw_seed())
        check_seed(self.seed)
        if self.real_name is not None and not isinstance(self.real_name, str):
            raise MusicLSTMError(f"real_name must be a name (str) or None, got {self.real_name!r}")


SCORE_KINDS = ("musicxml", "pdf")  # sheet music as MusicXML, or engraved as a PDF too


@dataclass(frozen=True)
class OutputConfig:
    """Where and how composed pieces are written: the output flags of generate and harmonize."""

    out: str = setting("out", "folder for the pieces", default_text="./out")
    no_audio: bool = setting(False, "skip the WAV")
    force: bool = setting(False, "replace the pieces of an earlier run in --out")
    soundfont: str | None = setting(None, "a .sf2 General MIDI SoundFont for the WAV", default_text="pretty_midi's")
    score: str | None = setting(
        None,
        "also write sheet music: piece_N.musicxml (a piano grand staff); '--score pdf' engraves a PDF too, "
        "with LilyPond or MuseScore",
        choices=SCORE_KINDS,
        nargs="?",
        const="musicxml",
    )


LIVE_MODES = ("harmonize", "answer")
CLOCKS = ("internal", "midi")
MAX_DELAY = 16  # steps of lookahead a live harmonization may wait for: a bar at 4 steps per beat
MAX_LIVE_PARTICLES = 64  # drawn side by side within one step's time (docs: play live)
MAX_WAIT_BEATS, MAX_ANSWER_BARS, MAX_SPEED = 16, 16, 64


@dataclass(frozen=True)
class LiveConfig:
    """How the model plays along live, and with what: the flags of `live` beside the generation settings."""

    mode: str = setting(
        "harmonize",
        "'harmonize': your highest key is the top voice, the model's voices sound under it at once; "
        "'answer': when you rest, the model continues your phrase, then listens again",
        choices=LIVE_MODES,
    )
    delay: int = setting(
        0, "harmonize: steps the voices wait, chosen knowing your next DELAY notes (particles resampled by them)"
    )
    lookahead: int | None = setting(
        None,
        "harmonize with a delay: harmonizations drawn side by side and resampled by your notes",
        default_text=f"{HARMONIZE_LOOKAHEAD} where notes are sampled, else 1",
    )
    wait: float = setting(2.0, "answer: beats of rest after which the model answers")
    bars: int = setting(2, "answer: bars (of 4 beats) the answer lasts")
    input: str | None = setting(None, "the MIDI input port to play from", default_text="the first there is")
    output: str | None = setting(None, "the MIDI output port the model plays to", default_text="the first there is")
    virtual: bool = setting(False, "make virtual ports named 'musiclstm' (or --input/--output) for a DAW to connect to")
    clock: str = setting(
        "internal", "'internal': steps at --tempo; 'midi': a step every 24/4 MIDI clock ticks received", choices=CLOCKS
    )
    play: str | None = setting(None, "replay this MIDI file as the player instead of an input port", metavar="FILE")
    speed: float = setting(1.0, "with --play: replay this many times faster, the step clock with it")
    record: str | None = setting(
        None, "write the performance here when it ends: your part and the model's on their own tracks", metavar="OUT"
    )

    def __post_init__(self) -> None:
        check_one_of("mode", self.mode, LIVE_MODES)
        check_whole_number("delay", self.delay, 0, MAX_DELAY)
        if self.delay and self.mode != "harmonize":
            raise MusicLSTMError("delay is harmonize's: an answer waits for your rest instead")
        if self.lookahead is not None:
            check_whole_number("lookahead", self.lookahead, 1, MAX_LIVE_PARTICLES)
            if not self.delay:
                raise MusicLSTMError("lookahead needs a delay: the particles look ahead over the steps the voices wait")
        check_number("wait", self.wait, 0, MAX_WAIT_BEATS, f"above 0 and at most {MAX_WAIT_BEATS} beats", False)
        check_whole_number("bars", self.bars, 1, MAX_ANSWER_BARS)
        check_one_of("clock", self.clock, CLOCKS)
        speed = check_number("speed", self.speed, 0, MAX_SPEED, f"above 0 and at most {MAX_SPEED}", False)
        object.__setattr__(self, "speed", speed)
        if speed != 1 and self.play is None:
            raise MusicLSTMError("speed needs --play: a player at a keyboard cannot be hurried")
        if self.play is not None and self.clock == "midi":
            raise MusicLSTMError("a replayed file sends no MIDI clock: use the internal clock with --play")


@dataclass(frozen=True)
class ExportConfig:
    """What `export` packs and how its model card is titled: the arguments of `bundle.export_model`."""

    run_dir: str = setting(MISSING, "a run folder made by 'musiclstm train'", flag="--run")
    out: str = setting(MISSING, "the model folder to write (replaced whole)")
    evaluation: str | None = setting(None, "a report from 'musiclstm evaluate --json', put in the card")
    name: str | None = setting(None, "the model card's title", default_text="from the corpus")
    made_by: str | None = setting(
        None, "Markdown naming the command that made the run", default_text="its data and train commands"
    )


@dataclass(frozen=True)
class EvaluateConfig:
    """What `evaluate` scores and judges, and where its report goes: the flags of that command."""

    data: str = setting(MISSING, "a corpus folder made by 'musiclstm data', or a benchmark file (.pickle/.pkl/.json)")
    model: str | None = setting(None, "a run or model folder", default_text="the bundled Bach model")
    split: str = setting("test", "which split to score", choices=SPLITS)
    context: str | None = setting(
        None,
        "'stateful': state carried through each whole piece (the literature's protocol); "
        "'window': each frame from the window before it (the seed's)",
        choices=CONTEXTS,
        default_text="the model's own",
    )
    generated: str | None = setting(None, "a folder of generated .mid files to judge against the split's music")
    plots: str | None = setting(None, "a folder for pitch-class and density plots, generated beside real")
    json: str | None = setting(None, "also write the report as JSON to FILE", metavar="FILE")


@dataclass(frozen=True)
class ServingConfig:
    """Where a page is served: the flags of `demo`, `listen serve` and `live --page`; a port of None, the command's."""

    port: int | None = setting(
        None, "the port to serve on", default_text="8501 for demo, 8502 for listen serve, 8503 for live --page"
    )
    address: str = setting(
        "localhost",
        "the address to serve on: localhost for this machine only, 0.0.0.0 opens it to the local network",
    )
    no_browser: bool = setting(False, "do not open a browser window")
