"""What every builder of the step loop shares before and after it: the model opened once, the settings
made whole, the keys, and the composition with its record and novelty.

`open_composer` loads a trained model once (`Composer`). `set_up` checks a builder's settings, opens
the model and fills in what the model decides (the way of choosing notes, the context), once per
call (`Setup`); `Setup.read` reads a MIDI file on the model's grid as a `Piece` (its metre and tempo
map with it), and `Setup.compose` turns the loop's events into a `Composition`: one `Piece` per
version on its own metre, the settings record, and each piece's novelty against the training pieces.
Nothing here writes a file.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from musiclstm.config import (
    AUTO_KEY,
    HEAD_CHOICE,
    KEY_NAMES,
    MODE_SCALE,
    STEP_CANDIDATES,
    TEMPO_RANGE_BPM,
    GenerationSettings,
    MusicLSTMError,
    with_values,
)
from musiclstm.data.corpus import load_corpus
from musiclstm.judging.novelty import COPY_WARNING_BARS, PassageHashes, copies_bars, novelty
from musiclstm.music.grid import Grid
from musiclstm.music.metrics import best_key, best_root
from musiclstm.music.piece import Piece
from musiclstm.music.roll import midi_to_roll
from musiclstm.network.heads import DrawRules
from musiclstm.network.model import MusicLSTM
from musiclstm.network.run import load_model, model_folder, read_run_config
from musiclstm.network.sampling import scale_mask

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Composition:
    """Composed pieces, each a whole `Piece` (its primer first, on its own metre and tempo), and their record.

    `rolls` and `onsets` give the pieces stacked, (num_outputs, steps, 88) bool. An infill, a harmonization and a
    continuation of a MIDI primer carry the file they read (`source_midi`), so that saving writes that file back
    with only what the model wrote changed: an infill's gap, a harmonization's voices below the melody (from the
    file's step `source_step`), the music after a primer.
    """

    pieces: tuple[Piece, ...]
    primer_steps: int
    settings: dict  # the GenerationSettings used, with the strategy's temperature and scale filled in
    primer_sources: tuple[str, ...]  # where each piece's primer came from
    keys: tuple[str, ...]  # each piece's key (a root; its scale is in settings)
    melody: np.ndarray | None = None  # (steps, 88) bool: the melody a harmonization keeps on top
    novelty: tuple[dict, ...] | None = None  # each piece's `novelty.novelty` against the training pieces
    gap: tuple[int, int] | None = None  # an infill's rewritten steps [start, end); the rest is the piece's own
    source_midi: bytes | None = None  # the MIDI file the pieces were made from, written back as it was
    source_step: int = 0  # the file's step where the pieces begin (a harmonization's first bar)

    @property
    def rolls(self) -> np.ndarray:
        return np.stack([piece.roll for piece in self.pieces])

    @property
    def onsets(self) -> np.ndarray:
        return np.stack([piece.onsets for piece in self.pieces])

    def grid(self, number: int) -> Grid:
        """The metre of piece `number` (from 0)."""
        return self.pieces[number].grid


@dataclass(frozen=True)
class Composer:
    """A trained model opened for composing: load it once, compose with it many times."""

    folder: Path
    model: MusicLSTM
    run_config: dict  # the folder's config.json

    @property
    def steps_per_beat(self) -> int:
        """The resolution the model reads music at: every piece it composes lies on a grid of these steps."""
        return self.run_config["data"]["steps_per_beat"]

    @property
    def reads_phrases(self) -> bool:
        """Whether the model reads where phrases end (its `phrase` input), so that composing may place them."""
        return "phrase" in self.model.config.inputs

    @property
    def phrase_bars(self) -> int | None:
        """Bars per phrase of the model's training music where the model reads phrase ends; None where it
        reads none or its music marked none (then composing places none)."""
        return self.run_config["data"].get("phrase_bars") if self.reads_phrases else None

    @property
    def grid(self) -> Grid:
        """The grid the model composes on where nothing gives a metre: its steps per beat, 4/4 from the first step."""
        return Grid(self.steps_per_beat)

    @property
    def corpus(self) -> Path:
        """The model's corpus folder; a relative path lies inside the model folder (as in the bundled model)."""
        return self.folder / self.run_config["data"]["corpus"]

    @cached_property
    def training_passages(self) -> tuple[PassageHashes, list[str]] | None:
        """The hashed passages of the model's training pieces and their names, built once; None where the
        corpus is gone or holds no train split (a model folder exported before the train split was kept)."""
        try:
            pieces = load_corpus(self.corpus).split("train")
        except MusicLSTMError:
            return None
        return (PassageHashes([piece.roll for piece in pieces]), [piece.name for piece in pieces]) if pieces else None


def open_composer(model: str | Path | Composer | None = None) -> Composer:
    """Load the model in a run folder (None: the bundled model), ready to compose; a Composer passes through.

    Raises:
        MusicLSTMError: `model` is none of those, or the folder, its config or its weights are missing,
            damaged or do not match.
    """
    if isinstance(model, Composer):
        return model
    check_path_or_none("model", model, "a model folder, a Composer from open_composer, or None (the bundled model)")
    folder = model_folder(model)
    return Composer(folder, load_model(folder), read_run_config(folder))


def check_path_or_none(name: str, value: object, takes: str) -> None:
    """Refuse an argument that is neither a path (str or os.PathLike) nor None, saying what it takes."""
    if value is not None and not isinstance(value, str | os.PathLike):
        raise MusicLSTMError(f"{name} must be {takes}; got {value!r}")


@dataclass(frozen=True)
class Setup:
    """One builder's call, set up once: the model, the settings made whole for it, and the context it reads in."""

    composer: Composer
    options: GenerationSettings  # `choose` filled in from the model's head where none was given
    context: str  # `window` or `stateful`: the settings', else the run's

    @property
    def model(self) -> MusicLSTM:
        return self.composer.model

    def read(self, path: str | Path, name: str, purpose: str) -> Piece:
        """A MIDI file read on the model's grid as a piece named `name`; a warning line says what reading changed.

        Raises:
            MusicLSTMError: the file cannot be read, or no note of it sounds on the 88 keys (nothing `to purpose`).
        """
        return read_music(path, name, self.composer, purpose)

    def keys(self, rolls: np.ndarray) -> list[str]:
        """Each piece's key for `rolls`: one roll (steps, 88) shared by every piece, or one per piece."""
        return piece_keys(rolls, self.options)

    def compose(
        self,
        events: np.ndarray,
        grids: list[Grid],
        primer_steps: int,
        sources: list[str],
        keys: list[str],
        judged_until: int | None = None,
        **fields,
    ) -> Composition:
        """The composition of the loop's `events` (num_outputs, steps, 176), each piece on its grid at the
        settings' tempo, recorded with `fields["record"]` added to the settings; novelty is judged on the steps
        after the primer, up to `judged_until` (None: the end)."""
        record = fields.pop("record", {})
        tempos = ((0, self.options.tempo_bpm),)
        pieces = tuple(Piece.from_events(piece, grid, tempos=tempos) for piece, grid in zip(events, grids, strict=True))
        composition = Composition(
            pieces,
            primer_steps,
            settings_record(self.options, self.context, self.composer, **record),
            tuple(sources),
            tuple(keys),
            **fields,
        )
        return with_novelty(composition, self.composer, judged_until)


def set_up(model: str | Path | Composer | None, settings: dict, **decided) -> Setup:
    """Check a builder's settings (before any work), open the model, and fill in what the model decides.

    `decided` are settings the builder fixes after reading its input (the length of a melody or a gap, the
    tempo of a file); `settings` must leave them out or agree. Raises MusicLSTMError on a bad model or setting.
    """
    options = with_values(GenerationSettings, dict(settings, **decided))
    composer = open_composer(model)
    options = for_model(options, composer.model)
    return Setup(composer, options, options.context or composer.run_config.get("context", "window"))


def warn_if_identical(settings: GenerationSettings, shared: str) -> None:
    """Warn that the pieces of a batch chosen by threshold from one shared start (`shared`: what they share)
    will all be the same: choosing by threshold is deterministic."""
    if settings.num_outputs > 1 and settings.choose == "threshold":
        log.warning(
            "choosing by threshold is deterministic: the %d pieces share %s and will be the same; "
            "use --choose sample for different pieces",
            settings.num_outputs,
            shared,
        )


def warn_if_one_draft(settings: GenerationSettings, asked: int, drafts: str, name: str) -> None:
    """Warn that the `asked` drafts side by side (`name`: the argument that asked for them) are cut to one:
    chosen by threshold, every draft would be the same, so nothing could weigh them."""
    if asked > 1 and settings.choose != "sample":
        log.warning(
            "choosing by threshold is deterministic: the %d %s would all be the same, so one is drawn "
            "(%s 1); use --choose sample to weigh them",
            asked,
            drafts,
            name,
        )


def read_music(path: str | Path, name: str, composer: Composer, purpose: str) -> Piece:
    """A MIDI file read on the model's grid as a piece named `name`, as a pianist hears it (the sustain pedal
    applied); one warning line counts each kind of change or loss reading made (`Reading.in_words`).

    Raises:
        MusicLSTMError: the file cannot be read, or no note of it sounds on the 88 keys (nothing `to purpose`).
    """
    try:
        read = midi_to_roll(path, composer.steps_per_beat)
    except MusicLSTMError as error:
        raise MusicLSTMError(str(error).replace(str(path), name)) from None
    changed = read.reading.in_words()
    if changed:
        log.warning("%s: %s", name, changed)
    if not read.roll.any():
        raise MusicLSTMError(f"{name}: no notes on the 88 keys to {purpose}")
    return replace(read, name=name)


def file_tempo(piece: Piece, what: str) -> tuple[float, str]:
    """A read piece's first tempo to 0.01 beats per minute, brought within TEMPO_RANGE_BPM, and where it came from
    (`what`), as the pieces' record says."""
    tempo = round(piece.tempo_bpm, 2)
    low, high = TEMPO_RANGE_BPM
    within = "" if low <= tempo <= high else f" ({tempo:g} bpm, brought within {low}-{high})"
    return min(max(tempo, low), high), f"{what}{within}"


def read_bytes(path: str | Path, name: str) -> bytes:
    """The bytes of a MIDI file just read, kept so that it is written back with only what the model wrote changed."""
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise MusicLSTMError(f"{name}: cannot be read again ({err.strerror})") from err


def settings_record(options: GenerationSettings, context: str, composer: Composer, **more) -> dict:
    """What a composition records of how it was made: the settings with the strategy's temperature and
    scale filled in, the context and the model, and `more`."""
    return dict(
        options.to_dict(),
        context=context,
        temperature=options.effective_temperature,
        scale=options.effective_scale,
        model=str(composer.folder),
        **more,
    )


def with_novelty(composition: Composition, composer: Composer, until: int | None = None) -> Composition:
    """The composition with each piece's novelty against the model's training pieces (the primer left out, and
    the steps from `until` on), bars counted in the piece's own metre; a warning for each piece that copies
    COPY_WARNING_BARS bars or more. Unchanged where the training pieces are not at hand."""
    if composer.training_passages is None:
        return composition
    training, names = composer.training_passages
    start = composition.primer_steps
    found = tuple(
        novelty(piece.roll[:until], training, names, piece.grid.shifted(start).steps_per_bar, start)
        for piece in composition.pieces
    )
    for number, entry in enumerate(found, start=1):
        if copies_bars(entry, COPY_WARNING_BARS):
            log.warning(
                "piece %d copies %g bars of the training piece %s (from its step %d)",
                number,
                entry["longest_shared_bars"],
                entry["source"],
                entry["source_step"],
            )
    return replace(composition, novelty=found)


def piece_keys(primers: np.ndarray, settings: GenerationSettings) -> list[str]:
    """Each piece's key: the one asked for, or for `auto` the key that best fits the piece's primer: for the
    scale `mode` its major or minor key (`best_key`, such as 'A minor'), for another scale the root whose
    scale holds most of its notes.

    `primers` is one primer (steps, 88) shared by every piece, or one per piece (num_outputs, steps, 88).
    """
    if settings.key != AUTO_KEY:
        return [settings.key] * settings.num_outputs
    rows = [primers] * settings.num_outputs if primers.ndim == 2 else list(primers)
    scale = settings.effective_scale or "chromatic"
    if scale == MODE_SCALE:
        return [best_key(primer) or settings.fixed_key for primer in rows]
    roots = [best_root(primer, scale) for primer in rows]
    return [settings.fixed_key if root is None else KEY_NAMES[root] for root in roots]


def for_model(settings: GenerationSettings, model: MusicLSTM) -> GenerationSettings:
    """The settings with the way of choosing notes filled in from the model's head where none was given."""
    return replace(settings, choose=settings.choose or HEAD_CHOICE[model.config.head])


def draw_rules(settings: GenerationSettings, keys: list[str]) -> DrawRules:
    """The rules each step is drawn by: the settings' temperature and choice, and each piece's key mask."""
    scale = settings.effective_scale
    return DrawRules(
        temperature=settings.effective_temperature,
        allowed=torch.stack([scale_mask(key, scale) for key in keys]) if scale else None,  # (pieces, 88)
        choose=settings.choose,
        threshold=settings.threshold,
        top_k=settings.top_k,
        max_notes=settings.max_notes,
        candidates=STEP_CANDIDATES if settings.temperature_on == "step" else 1,
        avoid_parallels=settings.avoid_parallels,
    )
