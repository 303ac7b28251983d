"""Compose: run a trained model forward one step at a time, choosing each step's notes.

A piece is its primer (the steps it opens with) followed by `length` generated steps, a bool roll of
shape (primer steps + length, 88). The model reads `window` steps of silence before the primer, as
in training. Each step: logits (calibrated: minus ln of the run's pos_weight) -> temperature -> key
mask -> choose notes (see `sampling`) -> append. Context `stateful` carries the LSTM state, one step
of work per step; `window` predicts each step from the last `window` steps alone, as the seed's loop
does (by lanes for a small batch, by re-reading for a large one: see the readers). All
`num_outputs` pieces are generated together as one batch.
"""

from __future__ import annotations

import logging
import math
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from musiclstm.config import (
    AUTO_KEY,
    BEATS_PER_BAR,
    CHOICES,
    CONTEXTS,
    KEY_NAMES,
    N_KEYS,
    PRECISIONS,
    STRATEGIES,
    MusicLSTMError,
)
from musiclstm.corpus import Corpus, load_corpus
from musiclstm.metrics import best_root, music_statistics
from musiclstm.model import MusicLSTM, load_model, read_run_config
from musiclstm.roll import midi_to_roll
from musiclstm.sampling import choose_notes, note_probabilities, scale_mask

log = logging.getLogger(__name__)

MAX_LENGTH = 100_000  # steps per piece
MAX_OUTPUTS = 256  # pieces per batch
MAX_LANES = 256  # window context runs lanes up to this many (batch x window) rows, then re-reads (README)
QUIET_START_NOTES = 3  # notes in the one-step primer used when there is nothing else to start from
QUIET_START_KEYS = slice(27, 52)  # MIDI 48-72, the octaves around middle C


@dataclass(frozen=True)
class GenerationSettings:
    """How pieces are composed; saved beside them. `temperature` and `scale` of None take the strategy's."""

    length: int = 256
    strategy: str = "balanced"
    temperature: float | None = None
    key: str = AUTO_KEY  # a root such as F# or Bb, or `auto`: the key that best fits each piece's primer
    scale: str | None = None
    choose: str = "threshold"
    threshold: float = 0.5
    top_k: int = 3
    max_notes: int | None = None
    num_outputs: int = 1
    context: str | None = None  # None: the context the model's training taught
    precision: str = "32"  # "bf16-mixed": bf16 autocast, about 2x faster where the CPU has bf16 units
    seed: int | None = None  # None: one is drawn, and kept here so that the pieces can be made again

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise MusicLSTMError(f"unknown strategy '{self.strategy}': choose one of {', '.join(STRATEGIES)}")
        if not 1 <= self.length <= MAX_LENGTH:
            raise MusicLSTMError(f"length must be between 1 and {MAX_LENGTH} steps, got {self.length}")
        if not 1 <= self.num_outputs <= MAX_OUTPUTS:
            raise MusicLSTMError(f"num_outputs must be between 1 and {MAX_OUTPUTS}, got {self.num_outputs}")
        if self.temperature is not None and not self.temperature > 0:
            raise MusicLSTMError(f"temperature must be above 0, got {self.temperature}")
        if not 0 < self.threshold < 1:
            raise MusicLSTMError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.choose not in CHOICES:
            raise MusicLSTMError(f"unknown way to choose notes '{self.choose}': choose one of {', '.join(CHOICES)}")
        if self.precision not in PRECISIONS:
            raise MusicLSTMError(f"unknown precision '{self.precision}': choose one of {', '.join(PRECISIONS)}")
        if self.context is not None and self.context not in CONTEXTS:
            raise MusicLSTMError(f"unknown context '{self.context}': choose one of {', '.join(CONTEXTS)}")
        if self.max_notes is not None and not 1 <= self.max_notes <= N_KEYS:
            raise MusicLSTMError(f"max_notes must be between 1 and {N_KEYS}, got {self.max_notes}")
        if not 0 <= self.top_k <= N_KEYS:
            raise MusicLSTMError(f"top_k must be between 0 and {N_KEYS}, got {self.top_k}")
        scale_mask(self.fixed_key, self.effective_scale or "chromatic")  # refuses an unknown key or scale now
        if self.seed is None:
            object.__setattr__(self, "seed", secrets.randbelow(2**31))

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


@dataclass
class Composition:
    """Generated pieces: `rolls` (num_outputs, primer_steps + length, 88) bool, the primer first."""

    rolls: np.ndarray
    primer_steps: int
    steps_per_beat: int
    settings: dict = field(default_factory=dict)
    primer_sources: list[str] = field(default_factory=list)  # where each piece's primer came from
    keys: list[str] = field(default_factory=list)  # each piece's key (a root; its scale is in settings)


@dataclass(frozen=True)
class Composer:
    """A trained model opened for composing: load it once, compose with it many times."""

    folder: Path
    model: MusicLSTM
    run_settings: dict  # the folder's config.json

    @property
    def steps_per_beat(self) -> int:
        return self.run_settings["data"]["steps_per_beat"]

    @property
    def corpus(self) -> Path:
        """The model's corpus folder; a relative path lies inside the model folder (as in the bundled model)."""
        return self.folder / self.run_settings["data"]["corpus"]


def open_composer(model: str | Path | Composer) -> Composer:
    """Load the model in a run folder, ready to compose (a Composer is passed through as it is).

    Raises:
        MusicLSTMError: the folder, its config or its weights are missing, damaged or do not match.
    """
    if isinstance(model, Composer):
        return model
    return Composer(Path(model), load_model(model), read_run_config(model))


def held_out_statistics(composer: Composer) -> dict | None:
    """The music statistics of the held-out pieces of the model's corpus; None where that corpus is gone."""
    try:
        corpus = load_corpus(composer.corpus)
    except MusicLSTMError:
        return None
    pieces = corpus.split("test") or corpus.split("valid")
    return music_statistics([piece.roll for piece in pieces], corpus.steps_per_beat) if pieces else None


def logits_to_notes(logits: torch.Tensor, settings: GenerationSettings, allowed, generator) -> torch.Tensor:
    probabilities = note_probabilities(logits, settings.effective_temperature, allowed)
    return choose_notes(
        probabilities, allowed, settings.choose, settings.threshold, settings.top_k, settings.max_notes, generator
    )


class StatefulReader:
    """Context `stateful`: the LSTM state runs on through the whole piece, one step of work per step."""

    def __init__(self, model: MusicLSTM, history: torch.Tensor):
        self.model = model
        self.logits, self.state = model(history)

    def read(self, frame: torch.Tensor) -> torch.Tensor:
        """Take the next step (batch, 88); return the logits for the step after it."""
        self.logits, self.state = self.model(frame[:, None], self.state)
        return self.logits


class ReReadingReader:
    """Context `window` as the seed computes it: the last `window` steps re-read from a zero state every step."""

    def __init__(self, model: MusicLSTM, history: torch.Tensor):
        self.model, self.window = model, model.config.window
        self.history = history[:, -self.window :]
        self.logits, _ = model(self.history)

    def read(self, frame: torch.Tensor) -> torch.Tensor:
        """Take the next step (batch, 88); return the logits for the step after it."""
        self.history = torch.cat([self.history[:, 1:], frame[:, None]], dim=1)
        self.logits, _ = self.model(self.history)
        return self.logits


class SlidingWindowReader:
    """Context `window`: each step is predicted from the last `window` steps alone, read from a zero state.

    Re-reading those steps every step (the seed's loop) is `window` LSTM steps of sequential work per
    step. Here `window` copies of the state ("lanes") run side by side instead, restarted from zero in
    turn, one per step: after every step exactly one lane has read the last `window` steps from zero,
    and its output is the window's prediction. Same arithmetic, one batched LSTM step per step.
    """

    def __init__(self, model: MusicLSTM, history: torch.Tensor):
        self.model, self.window = model, model.config.window
        batch, units = len(history), model.config.lstm_units
        lanes = batch * self.window  # lane j of piece b is row b * window + j
        self.state = tuple((torch.zeros(1, lanes, units), torch.zeros(1, lanes, units)) for _ in range(2))
        self.steps_read = 0
        for frame in history[:, -self.window :].unbind(dim=1):
            self.read(frame)

    def read(self, frame: torch.Tensor) -> torch.Tensor:
        """Take the next step (batch, 88); return the logits for the step after it."""
        restarting = self.steps_read % self.window
        for hidden, cell in self.state:
            hidden[:, restarting :: self.window] = 0
            cell[:, restarting :: self.window] = 0
        top, self.state = self.model.recur(frame.repeat_interleave(self.window, dim=0)[:, None], self.state)
        self.steps_read += 1
        full = self.steps_read % self.window  # the lane that has now read exactly `window` steps
        self.logits = self.model.readout(top.view(len(frame), self.window, -1)[:, full])
        return self.logits


def piece_keys(primers: np.ndarray, settings: GenerationSettings) -> list[str]:
    """Each piece's key: the one asked for, or for `auto` the root whose scale best fits the piece's primer."""
    if settings.key != AUTO_KEY:
        return [settings.key] * len(primers)
    roots = [best_root(primer, settings.effective_scale or "chromatic") for primer in primers]
    return [settings.fixed_key if root is None else KEY_NAMES[root] for root in roots]


@torch.inference_mode()
def compose_rolls(
    model: MusicLSTM,
    primers: np.ndarray,
    settings: GenerationSettings,
    context: str,
    logit_shift: float = 0.0,
    keys: list[str] | None = None,
) -> np.ndarray:
    """Generate `settings.num_outputs` pieces from `primers`; return them, primer first.

    `primers` is one primer (steps, 88) shared by every piece, or one per piece (num_outputs, steps, 88);
    `keys` gives each piece's key (default: `piece_keys`).
    """
    model.eval()
    window, batch = model.config.window, settings.num_outputs
    primers = np.broadcast_to(np.asarray(primers, dtype=bool), (batch, *np.shape(primers)[-2:]))
    generator = torch.Generator().manual_seed(settings.seed)
    scale = settings.effective_scale
    keys = keys or piece_keys(primers, settings)
    allowed = torch.stack([scale_mask(key, scale) for key in keys]) if scale else None  # (batch, 88)
    history = torch.zeros(batch, window + primers.shape[1], N_KEYS)  # silence, then the primer
    history[:, window:] = torch.from_numpy(primers.astype(np.float32))
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=settings.precision == "bf16-mixed"):
        if context == "stateful":
            reader = StatefulReader(model, history)
        elif batch * window <= MAX_LANES:
            reader = SlidingWindowReader(model, history)
        else:
            reader = ReReadingReader(model, history)
        steps = torch.empty(batch, settings.length, N_KEYS, dtype=torch.bool)
        for step in range(settings.length):
            logits = reader.logits.float() - logit_shift  # (batch, 88)
            steps[:, step] = logits_to_notes(logits, settings, allowed, generator)
            reader.read(steps[:, step].float())
    return np.concatenate([primers, steps.numpy()], axis=1)


def quiet_start(settings: GenerationSettings) -> np.ndarray:
    """One step per piece with QUIET_START_NOTES random in-key notes around middle C: a start that is not silence."""
    rng = np.random.default_rng(settings.seed)
    allowed = scale_mask(settings.fixed_key, settings.effective_scale or "chromatic").numpy()
    middle = np.flatnonzero(allowed[QUIET_START_KEYS]) + QUIET_START_KEYS.start
    primers = np.zeros((settings.num_outputs, 1, N_KEYS), dtype=bool)
    for primer in primers:
        primer[0, rng.choice(middle, QUIET_START_NOTES, replace=False)] = True
    return primers


def held_out_openings(corpus: Corpus, window: int, settings: GenerationSettings) -> tuple[np.ndarray, list[str]]:
    """A primer per piece: `window` steps from a bar line of a held-out piece, drawn by the seed.

    The pieces of a batch get different passages while there are enough to go round, so pieces chosen
    by threshold differ too. Raises LookupError when the corpus holds no held-out piece.
    """
    pieces = corpus.split("test") or corpus.split("valid")
    if not pieces:
        raise LookupError("no held-out piece")
    steps = min(window, max(piece.frames for piece in pieces))
    bar = BEATS_PER_BAR * corpus.steps_per_beat
    passages = [(piece, start) for piece in pieces for start in range(0, piece.frames - steps + 1, bar)]
    count = settings.num_outputs
    drawn = np.random.default_rng(settings.seed).choice(len(passages), size=count, replace=count > len(passages))
    chosen = [passages[i] for i in drawn]
    primers = np.stack([piece.roll[start : start + steps] for piece, start in chosen])
    return primers, [f"{piece.name}, steps {start}-{start + steps} (held out)" for piece, start in chosen]


def choose_primers(
    composer: Composer, primer: str | Path | None, settings: GenerationSettings
) -> tuple[np.ndarray, list[str]]:
    """What each piece opens with: a MIDI file, else a held-out passage of the model's corpus, else a quiet start.

    Returns the primers (num_outputs, steps, 88) and, for each, where it came from.
    """
    count = settings.num_outputs
    if primer is not None:
        roll = midi_to_roll(primer, composer.steps_per_beat).roll
        if not roll.any():
            raise MusicLSTMError(f"{primer}: no notes on the 88 keys to start from")
        return np.broadcast_to(roll, (count, *roll.shape)), [str(primer)] * count
    try:
        return held_out_openings(load_corpus(composer.corpus), composer.model.config.window, settings)
    except (MusicLSTMError, LookupError):  # the corpus was moved, deleted or holds nothing held out
        return quiet_start(settings), ["a quiet start (random in-key notes)"] * count


def generate(model: str | Path | Composer, primer: str | Path | None = None, **settings) -> Composition:
    """Compose pieces with a trained model.

    Args:
        model: a run folder made by training, or a Composer opened from one (to load it only once).
        primer: a MIDI file to start every piece from; None gives each piece its own passage of a held-out
            piece of the model's corpus (or, without one, a few random in-key notes).
        **settings: fields of GenerationSettings (length, strategy, temperature, key, scale, ...).

    Raises:
        MusicLSTMError: a bad model folder, primer or setting.
    """
    options = GenerationSettings(**settings)
    composer = open_composer(model)
    context = options.context or composer.run_settings.get("context", "window")
    primers, primer_sources = choose_primers(composer, primer, options)
    shift = math.log(composer.run_settings["train"]["pos_weight"])
    if primer is not None and options.num_outputs > 1 and options.choose == "threshold":
        log.warning(
            "choosing by threshold is deterministic: the %d pieces share one primer and will be the same; "
            "use --choose sample for different pieces",
            options.num_outputs,
        )
    keys = piece_keys(primers, options)
    rolls = compose_rolls(composer.model, primers, options, context, shift, keys)
    saved = dict(
        asdict(options),
        context=context,
        temperature=options.effective_temperature,
        scale=options.effective_scale,
        model=str(composer.folder),
    )
    return Composition(rolls, primers.shape[1], composer.steps_per_beat, saved, primer_sources, keys)
