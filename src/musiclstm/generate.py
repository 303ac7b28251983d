"""Compose: run a trained model forward one step at a time, choosing each step's notes.

A piece is its primer (the steps it opens with) followed by `length` generated steps, a bool roll of
shape (primer steps + length, 88). The model reads `window` steps of silence before the primer, as
in training. Each step: logits (calibrated: minus ln of the run's pos_weight) -> temperature -> key
mask -> choose notes (see `sampling`) -> append. Context `stateful` carries the LSTM state, one step
of work per step; `window` re-reads the last `window` steps each time, the seed's loop. All
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

from musiclstm.config import CHOICES, CONTEXTS, N_KEYS, STRATEGIES, MusicLSTMError
from musiclstm.corpus import load_corpus
from musiclstm.model import MusicLSTM, load_model, read_run_config
from musiclstm.roll import midi_to_roll
from musiclstm.sampling import choose_notes, note_probabilities, scale_mask

log = logging.getLogger(__name__)

MAX_LENGTH = 100_000  # steps per piece
MAX_OUTPUTS = 256  # pieces per batch


@dataclass(frozen=True)
class GenerationSettings:
    """How pieces are composed; saved beside them. `temperature` and `scale` of None take the strategy's."""

    length: int = 256
    strategy: str = "balanced"
    temperature: float | None = None
    key: str = "C"
    scale: str | None = None
    choose: str = "threshold"
    threshold: float = 0.5
    top_k: int = 3
    max_notes: int | None = None
    num_outputs: int = 1
    context: str | None = None  # None: the context the model's training taught
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
        if self.context is not None and self.context not in CONTEXTS:
            raise MusicLSTMError(f"unknown context '{self.context}': choose one of {', '.join(CONTEXTS)}")
        if self.max_notes is not None and not 1 <= self.max_notes <= N_KEYS:
            raise MusicLSTMError(f"max_notes must be between 1 and {N_KEYS}, got {self.max_notes}")
        if not 0 <= self.top_k <= N_KEYS:
            raise MusicLSTMError(f"top_k must be between 0 and {N_KEYS}, got {self.top_k}")
        scale_mask(self.key, self.effective_scale or "chromatic")  # refuses an unknown key or scale now
        if self.seed is None:
            object.__setattr__(self, "seed", secrets.randbelow(2**31))

    @property
    def effective_temperature(self) -> float:
        return self.temperature if self.temperature is not None else STRATEGIES[self.strategy].temperature

    @property
    def effective_scale(self) -> str | None:
        return self.scale if self.scale is not None else STRATEGIES[self.strategy].scale


@dataclass
class Composition:
    """Generated pieces: `rolls` (num_outputs, primer_steps + length, 88) bool, the primer first."""

    rolls: np.ndarray
    primer_steps: int
    steps_per_beat: int
    settings: dict = field(default_factory=dict)
    primer_source: str = "silence"


def logits_to_notes(logits: torch.Tensor, settings: GenerationSettings, allowed, generator) -> torch.Tensor:
    probabilities = note_probabilities(logits, settings.effective_temperature, allowed)
    return choose_notes(
        probabilities, allowed, settings.choose, settings.threshold, settings.top_k, settings.max_notes, generator
    )


@torch.inference_mode()
def compose_rolls(
    model: MusicLSTM, primer: np.ndarray, settings: GenerationSettings, context: str, logit_shift: float = 0.0
) -> np.ndarray:
    """Generate `settings.num_outputs` continuations of `primer` (steps, 88); return the pieces, primer first."""
    model.eval()
    window, batch = model.config.window, settings.num_outputs
    generator = torch.Generator().manual_seed(settings.seed)
    scale = settings.effective_scale
    allowed = scale_mask(settings.key, scale) if scale else None
    start = torch.zeros(window + len(primer), N_KEYS)
    start[window:] = torch.from_numpy(np.asarray(primer, dtype=np.float32))
    history = start.expand(batch, -1, -1).clone()  # (batch, window + primer, 88)
    steps = torch.empty(batch, settings.length, N_KEYS, dtype=torch.bool)
    logits, state = model(history)
    for step in range(settings.length):
        notes = logits_to_notes(logits - logit_shift, settings, allowed, generator)  # (batch, 88)
        steps[:, step] = notes
        frame = notes.float()[:, None]  # (batch, 1, 88)
        if context == "stateful":
            logits, state = model(frame, state)
        else:
            history = torch.cat([history[:, history.shape[1] - window + 1 :], frame], dim=1)  # the last `window`
            logits, _ = model(history)
    primer_part = np.broadcast_to(np.asarray(primer, dtype=bool), (batch, len(primer), N_KEYS))
    return np.concatenate([primer_part, steps.numpy()], axis=1)


def choose_primer(
    run_settings: dict, primer: str | Path | None, window: int, seed: int | None
) -> tuple[np.ndarray, str]:
    """The steps a piece opens with: a MIDI file, else a held-out piece of the model's corpus, else silence."""
    steps_per_beat = run_settings["data"]["steps_per_beat"]
    if primer is not None:
        roll = midi_to_roll(primer, steps_per_beat).roll
        if not roll.any():
            raise MusicLSTMError(f"{primer}: no notes on the 88 keys to start from")
        return roll, str(primer)
    try:
        corpus = load_corpus(run_settings["data"]["corpus"])
    except MusicLSTMError:  # the corpus was moved or deleted: start quietly instead
        return np.zeros((0, N_KEYS), dtype=bool), "silence"
    pieces = corpus.split("test") or corpus.split("valid")
    if not pieces:
        return np.zeros((0, N_KEYS), dtype=bool), "silence"
    piece = pieces[np.random.default_rng(seed).integers(len(pieces))]
    return piece.roll[:window], f"{piece.name} (held out, first {min(window, piece.frames)} steps)"


def generate(model_dir: str | Path, primer: str | Path | None = None, **settings) -> Composition:
    """Compose pieces with the model in `model_dir`.

    Args:
        model_dir: a run folder made by training.
        primer: a MIDI file to start from; None takes a held-out piece of the model's corpus, or silence.
        **settings: fields of GenerationSettings (length, strategy, temperature, key, scale, ...).

    Raises:
        MusicLSTMError: a bad model folder, primer or setting.
    """
    options = GenerationSettings(**settings)
    run_settings = read_run_config(model_dir)
    model = load_model(model_dir)
    context = options.context or run_settings.get("context", "window")
    primer_roll, primer_source = choose_primer(run_settings, primer, model.config.window, options.seed)
    shift = math.log(run_settings["train"]["pos_weight"])
    if options.num_outputs > 1 and options.choose == "threshold":
        log.warning(
            "choosing by threshold is deterministic: the %d pieces share one primer and will be the same; "
            "use --choose sample for different pieces",
            options.num_outputs,
        )
    rolls = compose_rolls(model, primer_roll, options, context, shift)
    saved = dict(
        asdict(options),
        context=context,
        temperature=options.effective_temperature,
        scale=options.effective_scale,
        model=str(model_dir),
    )
    return Composition(rolls, len(primer_roll), run_settings["data"]["steps_per_beat"], saved, primer_source)
