"""Write a composition's pieces as one set of files: MIDI, WAV, PNG and JSON, and sheet music when asked.

A folder holds one run's pieces: `<stem>_<n>.mid`, `.wav`, `.png`, `.json` (and `.musicxml`, `.pdf`),
written into a hidden folder first and moved into place together, so a failure leaves the folder as it was
(or, where the run made it, leaves no folder).
The MIDI file of a piece is written from its roll, except where the composition carries the file it was made
from (an infill, a harmonization, a continuation of a MIDI primer): that file, with only what the model wrote
changed (`music.splice`).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from musiclstm.composing.composer import Composition
from musiclstm.config import (
    DEFAULT_TEMPO_BPM,
    MODE_SCALE,
    MusicLSTMError,
    check_tempo,
    key_mode,
    scale_pitch_classes,
)
from musiclstm.files import check_output_folder, write_atomically, write_failure, write_json_atomically
from musiclstm.music.metrics import piece_statistics
from musiclstm.music.piece import top_line
from musiclstm.music.render import accented_velocity, plot_roll, render_audio, too_long_for_audio, write_midi
from musiclstm.music.score import check_score_kind, engrave, write_score
from musiclstm.music.splice import splice_gap, splice_voices

log = logging.getLogger(__name__)

PIECE_SUFFIXES = (".mid", ".wav", ".png", ".json", ".musicxml", ".pdf")


def earlier_pieces(out_dir: str | Path, stem: str = "piece") -> list[Path]:
    """The files of pieces already in a folder: `<stem>_<n>` with any of the suffixes save_pieces writes."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    return sorted(
        path
        for path in out_dir.glob(f"{stem}_*")
        if path.suffix in PIECE_SUFFIXES and path.stem.removeprefix(f"{stem}_").isdigit()
    )


def check_pieces_folder(out_dir: str | Path, replace: bool = False, stem: str = "piece") -> Path:
    """Refuse, before composing, a folder that cannot be written or that holds another run's pieces (unless `replace`).

    One run's pieces are one set: `evaluate --generated` judges every piece in a folder, so pieces of
    two runs must never mix. A folder named like a piece file is never replaced, `replace` or not.
    """
    out_dir = check_output_folder(out_dir)
    earlier = earlier_pieces(out_dir, stem)
    if folders := [path for path in earlier if path.is_dir()]:
        raise MusicLSTMError(
            f"{folders[0]}: a folder where a piece file would go; move it away or choose another --out"
        )
    if earlier and not replace:
        raise MusicLSTMError(
            f"{out_dir}: already holds the pieces of another run ({earlier[0].name}, ... {len(earlier)} files); "
            "add --force to replace them, or choose another --out"
        )
    return out_dir


def save_pieces(
    composition: Composition,
    out_dir: str | Path,
    tempo_bpm: float | None = None,
    audio: bool = True,
    soundfont: str | Path | None = None,
    stem: str = "piece",
    replace: bool = False,
    score: str | None = None,
    progress: bool = False,
) -> list[dict]:
    """Write each piece of a composition as `<stem>_<n>.mid`, `.wav` (unless not `audio`), `.png` and `.json`,
    and with `score` "musicxml" or "pdf" its sheet music as `.musicxml` (and `.pdf`; see `score`).

    The pieces are one set: they are written into a hidden folder inside `out_dir` and moved into place
    together once all are whole, so a failure (a full disk, an engraver that fails, Ctrl-C) leaves the
    folder as it was, and a folder it made (with any parents) is removed again. A folder holding earlier
    pieces is refused unless `replace`, which removes them then, so that no stale piece is left beside
    the new ones.
    A piece longer than MAX_AUDIO_SECONDS gets no WAV: a warning says so, and its JSON says why.
    `tempo_bpm` of None takes the composition's own (its settings' `tempo_bpm`). An infill's MIDI file is its
    piece's own file with only the gap rewritten (`music.splice`: every track, part, drum, velocity and tempo
    change kept; a `tempo_bpm` given, or asked of infill, scales its tempo map to start there), and its JSON
    says what it kept (`kept`); its PNG is drawn from the roll. The JSON holds the
    generation settings, the piece's key and where its primer came from, and the
    continuation's note density, polyphony, empty-step rate and in-key rate (the primer left out; of an
    infill, the gap's, and `gap`: its steps, bars, drafts and join NLL).
    Returns one entry per piece: its files, key, primer and statistics.
    """
    check_score_kind(score)
    out_dir = check_pieces_folder(out_dir, replace, stem)
    created = [folder for folder in (out_dir, *out_dir.parents) if not folder.exists()]  # the deepest first
    staging, finished = None, False
    bar = dict(desc="writing", unit="piece", disable=not progress)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{stem}s-"))
        written = [
            write_piece(
                composition, number, staging, out_dir / f"{stem}_{number}", tempo_bpm, audio, soundfont, score, progress
            )
            for number in tqdm(range(1, len(composition.pieces) + 1), **bar)
        ]
        for stale in earlier_pieces(out_dir, stem):
            stale.unlink()
        for staged in sorted(staging.iterdir()):
            staged.replace(out_dir / staged.name)
        finished = True
    except OSError as err:
        raise write_failure(out_dir, err) from err
    except MusicLSTMError as err:  # name the files where the user will look for them, not the hidden folder
        raise MusicLSTMError(str(err).replace(str(staging), str(out_dir)) if staging else str(err)) from err
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not finished and out_dir in created:  # a staging folder stopped before it was named is ours too
            remove_empty([*out_dir.glob(f".{stem}s-*"), *created])
    return written


def remove_empty(folders: list[Path]) -> None:
    """Remove these folders in turn where they are empty: those a failed or interrupted run made, the deepest
    first."""
    for folder in folders:
        with contextlib.suppress(OSError):  # not made, or holding something: left as it is
            folder.rmdir()


def write_piece(
    composition: Composition,
    number: int,
    staging: Path,
    final: Path,
    tempo_bpm: float | None,
    audio: bool,
    soundfont: str | Path | None,
    score: str | None,
    progress: bool = False,
) -> dict:
    """Write piece `number` (from 1) into `staging`; its entry names the files as they will lie at `final`."""
    piece, key = composition.pieces[number - 1], composition.keys[number - 1]
    roll, onsets, grid = piece.roll, piece.onsets, piece.grid  # not `composition.rolls`: it stacks every piece
    settings, primer_steps = composition.settings, composition.primer_steps
    gap = composition.gap
    shaded_primer, judged = (0, slice(*gap)) if gap else (primer_steps, slice(primer_steps, None))
    asked_bpm, tempo_bpm = tempo_bpm, settings.get("tempo_bpm", DEFAULT_TEMPO_BPM) if tempo_bpm is None else tempo_bpm
    scale = settings.get("scale")
    base = staging / final.name
    if composition.source_midi is not None:
        kept = write_spliced(composition, number, base.with_suffix(".mid"), asked_tempo(settings, asked_bpm))
        seconds = kept["seconds"]
    else:
        write_midi(roll, base.with_suffix(".mid"), grid, tempo_bpm, onsets=onsets)
        kept, seconds = None, len(roll) * 60 / (grid.steps_per_beat * tempo_bpm)
    files = {"midi": str(final.with_suffix(".mid"))}
    no_audio_reason = too_long_for_audio(seconds) if audio else None
    if no_audio_reason:
        log.warning("%s: no WAV written: %s", final.name, no_audio_reason)
        files["no_audio"] = no_audio_reason
    elif audio:
        files["synthesizer"] = render_audio(base.with_suffix(".mid"), base.with_suffix(".wav"), soundfont)
        files["wav"] = str(final.with_suffix(".wav"))
    plot_roll(roll, base.with_suffix(".png"), grid, shaded_primer, final.name, composition.melody, gap)
    files["png"] = str(final.with_suffix(".png"))
    if score is not None:
        named_key = score_key(key, scale)
        sheet = write_score(
            roll, base.with_suffix(".musicxml"), grid, tempo_bpm, named_key, final.name, progress, onsets
        )
        files["musicxml"] = str(final.with_suffix(".musicxml"))
        if score == "pdf":
            engrave(sheet, base.with_suffix(".pdf"))
            files["pdf"] = str(final.with_suffix(".pdf"))
    scale_classes = scale_pitch_classes(key, scale) if scale else None
    entry = {
        "files": files,
        "statistics": piece_statistics(roll[judged], scale_classes),
        "key": (key if scale == MODE_SCALE else f"{key} {scale}") if scale else None,
        "primer": composition.primer_sources[number - 1],
        "primer_steps": primer_steps,
        "tempo_bpm": tempo_bpm,
        "settings": settings,
        "novelty": composition.novelty[number - 1] if composition.novelty else None,
    }
    if gap:
        entry["gap"] = gap_record(composition, number)
    if kept:
        entry["kept"] = kept
    write_json_atomically(base.with_suffix(".json"), entry)
    files["json"] = str(final.with_suffix(".json"))
    return entry


def asked_tempo(settings: dict, tempo_bpm: float | None) -> float | None:
    """The tempo an infill's file is written to start at: the one asked of save_pieces, else of infill; None where
    infill took the file's own (its settings say `tempo_from`), so that the tempo map is written as it is."""
    if tempo_bpm is not None:
        return check_tempo(tempo_bpm)
    return None if "tempo_from" in settings else settings.get("tempo_bpm")


def write_spliced(composition: Composition, number: int, path: Path, tempo_bpm: float | None) -> dict:
    """Write piece `number` (from 1) as the file it was made from with only what the model wrote changed: an
    infill's gap (`splice_gap`), a harmonization's voices below the melody (`splice_voices`), or what follows a
    primer (`splice_gap` after its end); the model's notes accented as `write_midi` accents them. Return what
    the file kept."""
    piece = composition.pieces[number - 1]
    velocity, source = accented_velocity(piece.grid), composition.source_midi
    if composition.gap:
        midi, kept = splice_gap(source, piece, composition.gap, velocity, tempo_bpm)
    elif composition.melody is not None:
        line = top_line(composition.melody)
        midi, kept = splice_voices(source, piece, composition.source_step, line, velocity, tempo_bpm)
    else:  # a continuation: the primer's file whole, the model's music after it
        midi, kept = splice_gap(source, piece, (composition.primer_steps, piece.n_steps), velocity, tempo_bpm)
    write_atomically(path, lambda file: midi.save(file=file))
    return kept


def gap_record(composition: Composition, number: int) -> dict:
    """What an infill's JSON says of piece `number`'s gap: its steps and bars, the drafts, the join and its NLL."""
    settings = composition.settings
    return {
        "steps": list(composition.gap),
        "bars": settings.get("gap_bars"),
        "particles": settings.get("particles"),
        "join_steps": settings.get("join_steps"),
        "join_nll": settings["join_nll"][number - 1] if settings.get("join_nll") else None,
    }


def format_pieces(pieces: list[dict]) -> str:
    """One line per written piece: its MIDI file, key and in-key share, notes per step and polyphony."""
    lines = []
    for piece in pieces:
        statistics = piece["statistics"]
        key = f"{piece['key']}, {statistics['in_key_rate']:.0%} in key, " if piece["key"] else ""
        lines.append(
            f"{piece['files']['midi']}: {key}{statistics['note_density']:.2f} notes per step, "
            f"polyphony {statistics['polyphony']:.2f}"
        )
    return "\n".join(lines)


def score_key(key: str, scale: str | None) -> str | None:
    """The key a score is written in, such as 'A minor', where the piece's key and scale name a major or minor key;
    None (the score's own key analysis chooses) for another scale or none."""
    if scale == MODE_SCALE:
        root, mode = key_mode(key)
        return f"{root} {mode}"
    return f"{key} {scale}" if scale in ("major", "minor") else None
