"""Generate: continue a primer with a trained model, the plainest builder of the step loop (`composing`).

A piece is its primer (the steps it opens with) followed by `length` generated steps: events of shape
(primer steps + length, 176), the keys sounding and the keys struck (`reading.as_events`), on the
primer's metre. The primer is a MIDI file, else a held-out passage of the model's corpus (from one
of its bar lines) moved into the asked key, else a few in-key notes. The loop draws every step under the
settings' `DrawRules` (temperature, key mask, threshold or sample, top-k fallback, cap), one particle
per piece and nothing weighed; all `num_outputs` pieces are generated together as one batch.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from musiclstm.composing.composer import (
    Composer,
    Composition,
    Setup,
    check_path_or_none,
    draw_rules,
    file_tempo,
    for_model,
    piece_keys,
    read_bytes,
    set_up,
    warn_if_identical,
)
from musiclstm.composing.loop import StepPlan, compose
from musiclstm.config import AUTO_KEY, KEY_NAMES, N_KEYS, GenerationSettings, MusicLSTMError, key_root
from musiclstm.data.corpus import Corpus, load_corpus
from musiclstm.music.grid import COMMON_TIME, MAX_ROLL_STEPS, Grid
from musiclstm.music.metrics import best_root, music_statistics
from musiclstm.music.piece import Piece, allowed_shifts, shift_keys
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import EVENT_WIDTH, as_events
from musiclstm.network.sampling import scale_mask

log = logging.getLogger(__name__)

QUIET_START_NOTES = 3  # notes in the one-step primer used when there is nothing else to start from
QUIET_START_KEYS = slice(27, 52)  # MIDI 48-72, the octaves around middle C


def held_out_statistics(composer: Composer) -> dict | None:
    """The music statistics of the held-out pieces of the model's corpus; None where that corpus is gone."""
    try:
        corpus = load_corpus(composer.corpus)
    except MusicLSTMError:
        return None
    pieces = [piece.piece for piece in corpus.held_out()]
    return music_statistics(pieces) if pieces else None


def compose_rolls(
    model: MusicLSTM,
    primers: np.ndarray,
    settings: GenerationSettings,
    context: str,
    keys: list[str] | None = None,
    progress: bool = False,
    grids: Grid | list[Grid] = COMMON_TIME,
) -> np.ndarray:
    """Generate `settings.num_outputs` pieces from `primers`; return their events, primer first.

    `primers` is one primer's events (steps, 176) shared by every piece, or one per piece (num_outputs,
    steps, 176) (a roll of 88 keys is read with the keys turning on as its strikes); `grids` the metre
    of all (default: 4/4 from the first step) or of each;
    `keys` gives each piece's key (default: `piece_keys`); `progress` shows a bar of steps composed.
    The plan is the plainest of the step loop's: the settings' rules and key masks, one particle, no weights.
    """
    settings = for_model(settings, model)
    primers = np.asarray(primers, dtype=bool)
    primers = primers if primers.shape[-1] == EVENT_WIDTH else as_events(primers)
    batch, rolls = settings.num_outputs, primers[..., :N_KEYS]
    rules = draw_rules(settings, keys or piece_keys(rolls, settings))
    if settings.keep_voices:
        rules = replace(rules, voices=torch.from_numpy(primer_voices(rolls, batch)))
    plan = StepPlan(batch, settings.length, rules)
    progress_name = "composing" if progress else None
    steps = compose(model, primers, context, plan, settings.seed, settings.precision, progress_name, grids=grids)
    rows = primers[None] if primers.ndim == 2 else primers
    return np.concatenate([np.broadcast_to(rows, (batch, *rows.shape[1:])), steps.numpy()], axis=1)


def primer_voices(rolls: np.ndarray, batch: int) -> np.ndarray:
    """Each piece's voices: the number of keys its primer (steps, 88), or each primer (batch, steps, 88), sounds
    most often where it sounds (a chorale's 4), shape (batch,) int64; 0 for a silent primer."""
    rows = np.broadcast_to(rolls, (batch, *rolls.shape[-2:]))
    counts = rows.sum(axis=-1)  # (batch, steps)
    return np.array([np.bincount(row[row > 0]).argmax() if (row > 0).any() else 0 for row in counts], dtype=np.int64)


def quiet_start(settings: GenerationSettings) -> np.ndarray:
    """One step per piece with QUIET_START_NOTES random in-key notes around middle C, struck: a start that is
    not silence, as events (num_outputs, 1, 176)."""
    rng = np.random.default_rng(settings.seed)
    allowed = scale_mask(settings.fixed_key, settings.effective_scale or "chromatic").numpy()
    middle = np.flatnonzero(allowed[QUIET_START_KEYS]) + QUIET_START_KEYS.start
    primers = np.zeros((settings.num_outputs, 1, N_KEYS), dtype=bool)
    for primer in primers:
        primer[0, rng.choice(middle, QUIET_START_NOTES, replace=False)] = True
    return as_events(primers)


def held_out_openings(
    corpus: Corpus, window: int, settings: GenerationSettings
) -> tuple[np.ndarray, list[str], list[Grid]]:
    """A primer per piece: the events of `window` steps from a bar line of a held-out piece, drawn by the
    seed, with the piece's metre from there.

    The pieces of a batch get different passages while there are enough to go round, so pieces chosen
    by threshold differ too. Raises LookupError when the corpus holds no held-out piece.
    """
    pieces = corpus.held_out()
    if not pieces:
        raise LookupError("no held-out piece")
    steps = min(window, max(piece.frames for piece in pieces))
    passages = [(piece, int(start)) for piece in pieces for start in piece.grid.bar_starts(piece.frames - steps)]
    if not passages:  # every piece shorter than its first bar line plus the primer: start where they start
        passages = [(piece, 0) for piece in pieces if piece.frames >= steps]
    count = settings.num_outputs
    drawn = np.random.default_rng(settings.seed).choice(len(passages), size=count, replace=count > len(passages))
    chosen = [passages[i] for i in drawn]
    primers = np.stack([piece.events[start : start + steps] for piece, start in chosen])
    sources = [f"{piece.name}, steps {start}-{start + steps} (held out)" for piece, start in chosen]
    return primers, sources, [piece.grid.shifted(start) for piece, start in chosen]


def nearest_shift(roll: np.ndarray, interval: int) -> int | None:
    """The smallest move in semitones, up or down, that equals `interval` modulo 12 and keeps every note of
    `roll` (steps, 88) on the keyboard; None where none does."""
    fitting = [shift for shift in allowed_shifts(roll, 1 - N_KEYS, N_KEYS - 1) if shift % 12 == interval % 12]
    return min(fitting, key=abs, default=None)


def in_asked_key(primers: np.ndarray, sources: list[str], settings: GenerationSettings) -> tuple[np.ndarray, list]:
    """Held-out primers' events (num_outputs, steps, 176) moved into the key the user fixed, each source saying how.

    A passage keeps its own key, and under the asked key's mask the model would go on from music whose
    notes it may no longer play; so each moves by the nearest shift from the root whose scale fits it
    best (`best_root`) to the asked root. Unchanged for key `auto` or without a scale (no mask).
    """
    scale = settings.effective_scale
    if settings.key == AUTO_KEY or scale is None:
        return primers, sources
    moved, named = primers.copy(), list(sources)
    for number, primer in enumerate(primers):
        root = best_root(primer[:, :N_KEYS], scale)
        if root is None:
            continue
        shift = nearest_shift(primer[:, :N_KEYS], key_root(settings.key) - root)
        if shift is None:
            named[number] += f", left in {KEY_NAMES[root]} {scale} (no move to {settings.key} keeps it on the keyboard)"
        elif shift:
            moved[number] = shift_keys(primer, shift)
            named[number] += f", transposed {shift:+d} semitones from {KEY_NAMES[root]} {scale} to {settings.key}"
    return moved, named


def choose_primers(
    setup: Setup, primer: str | Path | None, primer_name: str | None = None
) -> tuple[np.ndarray, list[str], list[Grid], Piece | None]:
    """What each piece opens with: a MIDI file, else a held-out passage of the model's corpus, else a quiet start.

    Returns the primers' events, one per piece (num_outputs, steps, 176) or a MIDI file's one
    (steps, 176) shared by all, each piece's metre (the primer's, going on past it), and for each
    piece where its primer came from (a held-out passage is moved into a
    fixed key: `in_asked_key`; a MIDI primer stays as it is); a MIDI primer is named
    `primer_name` (its path when None), in that list and in any error about it; and the MIDI primer as read
    (None for the others). A MIDI primer and the steps composed after it
    may be at most MAX_ROLL_STEPS long together, the most musiclstm reads.
    """
    composer, settings = setup.composer, setup.options
    count = settings.num_outputs
    if primer is not None:
        read = setup.read(primer, primer_name or str(primer), "start from")
        if read.n_steps + settings.length > MAX_ROLL_STEPS:
            raise MusicLSTMError(
                f"{read.name}: {read.n_steps:,} steps long at {read.steps_per_beat} per beat; with "
                f"{settings.length:,} more, the pieces would be over the limit of {MAX_ROLL_STEPS:,} steps that "
                "musiclstm reads back"
            )
        return read.events, [read.name] * count, [read.grid] * count, read
    try:
        primers, sources, grids = held_out_openings(
            load_corpus(composer.corpus), composer.model.config.window, settings
        )
    except (MusicLSTMError, LookupError):  # the corpus was moved, deleted or holds nothing held out
        return quiet_start(settings), ["a quiet start (random in-key notes)"] * count, [composer.grid] * count, None
    return (*in_asked_key(primers, sources, settings), grids, None)


def phrased_grids(grids: list[Grid], primer_steps: int, settings: GenerationSettings, composer: Composer):
    """Each piece's grid with the primer's marked phrase ends and, where the model reads phrase ends, one every
    `settings.phrase_bars` bars after it (None: the model's training music's own; 0: none placed). A held-out
    primer's later marks, which belong to music not played, are left out."""
    bars = composer.phrase_bars if settings.phrase_bars is None else settings.phrase_bars
    end = primer_steps + settings.length
    if not bars or not composer.reads_phrases:
        return [grid.cropped(primer_steps) for grid in grids]
    return [grid.phrased(primer_steps, end, bars) for grid in grids]


def generate(
    model: str | Path | Composer | None = None,
    primer: str | Path | None = None,
    primer_name: str | None = None,
    progress: bool = False,
    **settings,
) -> Composition:
    """Compose pieces with a trained model.

    Args:
        model: a run or model folder, or a Composer opened from one (to load it only once); None: the
            bundled model.
        primer: a MIDI file to start every piece from; None gives each piece its own passage of a held-out
            piece of the model's corpus (or, without one, a few random in-key notes).
        primer_name: how to name the primer in the pieces' records and in errors (default: its path).
        progress: show a progress bar of the steps composed.
        **settings: fields of GenerationSettings (length, strategy, temperature, key, scale, ...).

    Raises:
        MusicLSTMError: a bad model folder, primer or setting; settings are checked before any work.
    """
    check_path_or_none("primer", primer, "a MIDI file's path, or None (a held-out passage of the model's corpus)")
    check_path_or_none("primer_name", primer_name, "a name (str) for the primer, or None (its path)")
    setup = set_up(model, settings)
    options = setup.options
    primers, primer_sources, grids, read = choose_primers(setup, primer, primer_name)
    record, source = {}, {}
    if read is not None:  # the primer's file is written back whole, the pieces after it, at its tempo map
        warn_if_identical(options, "one primer")
        record["reading"], source["source_midi"] = read.reading.changes(), read_bytes(primer, read.name)
        if "tempo_bpm" not in settings:
            tempo_bpm, record["tempo_from"] = file_tempo(read, "the primer's tempo at its start")
            setup = replace(setup, options=replace(options, tempo_bpm=tempo_bpm))
            options = setup.options
    keys = setup.keys(primers[..., :N_KEYS])
    grids = phrased_grids(grids, primers.shape[-2], options, setup.composer)
    events = compose_rolls(setup.model, primers, options, setup.context, keys, progress, grids)
    return setup.compose(events, grids, primers.shape[-2], primer_sources, keys, record=record, **source)
