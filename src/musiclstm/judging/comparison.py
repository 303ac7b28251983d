"""Judge generated music against real held-out music: statistics, a two-sample test and novelty.

A folder of generated pieces is read as MIDI on the corpus's grid, each with the JSON sidecar `save_pieces`
writes beside it (its `primer_steps` says where the model's own music starts, and its `settings` what
made it); the primer is left out, so what is judged is what the model made, its beats where the piece
had them. The pieces are set beside the corpus's real pieces of a split: `metrics.music_statistics` on
both sides (their rhythm too, notes counted one way on both: `strikes_again`; their texture and voice
leading), the pitch-class KL from the train split, `two_sample` (can a classifier tell 4-bar passages
apart?) and `novelty` (how much of each piece the training pieces hold). `Corpus.held_out` is what every
part of the package means by held-out music. Scoring a model's predictions is `evaluation`'s job, not this module's.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from musiclstm.config import KEY_NAMES, MusicLSTMError
from musiclstm.data.corpus import Corpus
from musiclstm.files import pyplot, write_atomically
from musiclstm.judging.novelty import novelty_report
from musiclstm.judging.two_sample import two_sample_test
from musiclstm.music.grid import Grid
from musiclstm.music.metrics import DENSITY_BINS, kl_divergence, music_statistics, pitch_class_counts
from musiclstm.music.piece import Piece
from musiclstm.music.roll import midi_to_roll

log = logging.getLogger(__name__)


def read_generated(folder: str | Path, grid: Grid) -> tuple[dict[str, Piece], dict | None, list[dict]]:
    """Every readable MIDI file in a folder (not recursive) by file name, read at `grid`'s steps per beat with
    its onsets and its own metre, the primer left out where the piece's JSON gives its length (what is judged
    is what the model made, on the piece's metre from there, so beats stay where they were); the
    generation settings their JSON files record when they all share them (else None); and the files
    skipped, each with its reason, as `data` skips them.

    A piece is skipped, with a warning naming the file, when its MIDI file is unreadable, when its JSON is there
    but does not say where the primer ends (`primer_steps`), or when nothing is left after the primer.

    Raises:
        MusicLSTMError: the folder holds no .mid file, or none with steps left to judge.
    """
    paths = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not paths:
        raise MusicLSTMError(f"{folder}: no .mid files to judge")
    pieces, sidecars, skipped = {}, [], []
    for path in paths:
        try:
            sidecar = read_sidecar(path)
            pieces[path.name] = continuation(midi_to_roll(path, grid.steps_per_beat), path, sidecar)
            sidecars.append(sidecar)
        except MusicLSTMError as error:
            reason = str(error).removeprefix(f"{path}: ")
            log.warning("skipped %s: %s", path, reason)
            skipped.append({"name": path.name, "reason": reason})
    if not pieces:
        reasons = "; ".join(f"{entry['name']}: {entry['reason']}" for entry in skipped[:5])
        raise MusicLSTMError(f"{folder}: nothing to judge, no .mid file with steps of its own to read ({reasons})")
    return pieces, shared_settings(sidecars), skipped


def read_sidecar(midi_path: Path) -> dict | None:
    """The JSON `save_pieces` wrote beside a generated piece, read once; None where there is none.

    Raises:
        MusicLSTMError: the JSON is there but unreadable or not an object; the message names it.
    """
    sidecar = midi_path.with_suffix(".json")
    if not sidecar.exists():
        return None
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MusicLSTMError(f"{midi_path}: its {sidecar.name} is unreadable ({err})") from err
    if not isinstance(recorded, dict):
        raise MusicLSTMError(f"{midi_path}: its {sidecar.name} is a JSON {type(recorded).__name__}, not an object")
    return recorded


def continuation(read: Piece, midi_path: Path, sidecar: dict | None) -> Piece:
    """The steps of a generated piece after its primer, which its `sidecar` gives (none without one), with their
    onsets, on the piece's grid from the primer's end.

    Raises:
        MusicLSTMError: the sidecar cannot say where the primer ends, or nothing follows the primer.
    """
    steps = primer_steps_in(sidecar, midi_path, len(read.roll))
    if steps == len(read.roll):
        what = f"after its {steps}-step primer" if steps else "in it"
        raise MusicLSTMError(f"{midi_path}: no steps {what} to judge")
    return read.steps(steps)


def primer_steps(midi_path: Path, n_steps: int) -> int:
    """How many of a generated piece's `n_steps` steps are its primer, from the JSON `save_pieces` wrote beside it.

    A piece without a JSON, or whose JSON records no `primer_steps`, has none: music from elsewhere is judged whole.
    A JSON that is there but unreadable, not an object, or whose `primer_steps` is not a whole number from 0 to
    `n_steps` is refused: judging the piece whole would count a primer (real music, often) as the model's.

    Raises:
        MusicLSTMError: the JSON is there but does not say where the primer ends; the message names the JSON.
    """
    return primer_steps_in(read_sidecar(midi_path), midi_path, n_steps)


def primer_steps_in(sidecar: dict | None, midi_path: Path, n_steps: int) -> int:
    """The primer's steps a piece's read `sidecar` records (0 without one), refused unless 0 to `n_steps`."""
    steps = 0 if sidecar is None else sidecar.get("primer_steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= n_steps:
        raise MusicLSTMError(
            f"{midi_path}: its {midi_path.with_suffix('.json').name} gives primer_steps {steps!r}, not a whole "
            f"number from 0 to {n_steps} (the piece's steps), so where the model's music starts is unknown"
        )
    return steps


def shared_settings(sidecars: list[dict | None]) -> dict | None:
    """The generation settings the pieces' sidecars record, when every piece has one and all agree but the seed."""
    found = []
    for sidecar in sidecars:
        settings = None if sidecar is None else sidecar.get("settings")
        if not isinstance(settings, dict):
            return None
        found.append({name: value for name, value in settings.items() if name != "seed"})
    return found[0] if all(settings == found[0] for settings in found) else None


def compare_generated(folder: str | Path, corpus: Corpus, split: str) -> dict:
    """Judge generated pieces against the real pieces of a split, and against the seed's own targets.

    Both sides are read at the corpus's steps per beat, each piece on its own metre, and their notes are told
    apart by onsets only where the real pieces' onsets say more than their rolls (`strikes_again`), so that
    the two rhythms compare.
    """
    grid = Grid(corpus.steps_per_beat)
    pieces, settings, skipped = read_generated(folder, grid)
    sides = {"generated": list(pieces.values()), "real": [piece.piece for piece in corpus.split(split)]}
    with_onsets = any(map(strikes_again, sides["real"]))
    result = {side: music_statistics(placed, with_onsets) for side, placed in sides.items()}
    rolls = {side: [piece.roll for piece in placed] for side, placed in sides.items()}
    train = corpus.split("train")
    train_counts = pitch_class_counts(np.concatenate([piece.roll for piece in train]))
    for side, side_rolls in rolls.items():
        result[side]["pitch_class_kl_from_train"] = kl_divergence(
            pitch_class_counts(np.concatenate(side_rolls)), train_counts
        )
    if settings is not None:
        result["settings"] = settings
    result["skipped"] = skipped
    result["two_sample"] = two_sample_test(rolls["real"], rolls["generated"], grid)
    result["two_sample_accuracy"] = result["two_sample"]["accuracy"]
    training_rolls, names = [piece.roll for piece in train], [piece.name for piece in train]
    result["novelty"] = novelty_report(
        {name: piece.roll for name, piece in pieces.items()}, training_rolls, names, grid.steps_per_bar
    )
    density = result["generated"]["note_density"]
    result["seed_targets"] = {"note_density_2_to_4": {"value": density, "passed": 2.0 <= density <= 4.0}}
    return result


def strikes_again(piece: Piece) -> bool:
    """Whether a piece strikes a key that sounded at the step before: what a roll alone cannot tell.

    Notes are told apart by their onsets on both sides only where some real piece does so, so that neither
    side splits notes the other would leave whole (a benchmark file holds only the keys sounding).
    """
    return bool((piece.onsets[1:] & piece.roll[:-1]).any())


def plot_comparison(generated: dict | None, folder: Path) -> list[str]:
    """Draw the pitch-class histograms and densities of generated beside real music; return the files."""
    if generated is None:
        return []
    plt = pyplot()

    folder.mkdir(parents=True, exist_ok=True)
    figure, (classes, density) = plt.subplots(1, 2, figsize=(12, 4))
    width = 0.4
    for offset, side in ((-width / 2, "real"), (width / 2, "generated")):
        classes.bar(np.arange(12) + offset, generated[side]["pitch_class_histogram"], width, label=side)
    classes.set(xticks=range(12), xticklabels=KEY_NAMES, title="Pitch classes", ylabel="share of notes")
    classes.legend()
    bins = np.arange(DENSITY_BINS)
    for offset, side in ((-width / 2, "real"), (width / 2, "generated")):
        mean = generated[side]["note_density"]
        density.bar(
            bins + offset, generated[side]["notes_per_step_histogram"], width, label=f"{side} (mean {mean:.2f})"
        )
    density.axvspan(2, 4, color="tab:green", alpha=0.15, label="seed's target for the mean, 2-4")
    labels = [str(count) for count in bins[:-1]] + [f"{bins[-1]}+"]
    density.set(
        xticks=bins, xticklabels=labels, title="Notes per step", xlabel="sounding keys", ylabel="share of steps"
    )
    density.legend()
    figure.tight_layout()
    path = folder / "generated_vs_real.png"
    write_atomically(path, lambda file: figure.savefig(file, format="png", dpi=100))
    plt.close(figure)
    return [str(path)]


def format_two_sample(test: dict) -> str:
    """One line: how well a classifier tells generated 4-bar passages from real ones, and by what."""
    if test["accuracy"] is None:
        return f"  two-sample test: not run ({test['reason']})"
    telling = ", ".join(
        f"{entry['feature']} {entry['generated']:.2f} vs {entry['real']:.2f}" for entry in test["features"][:3]
    )
    return (
        f"  two-sample test: a classifier tells generated from real {test['passage_bars']}-bar passages with balanced "
        f"accuracy {test['accuracy']:.2f} (0.5: indistinguishable; {test['folds']} folds, "
        f"{test['passages']['generated']} generated and {test['passages']['real']} real passages); "
        f"most telling, generated vs real: {telling}"
    )


def format_novelty(novelty: dict) -> str:
    """One line: how much of the generated pieces the training pieces hold too."""
    longest = max(novelty["pieces"].items(), key=lambda item: item[1]["longest_shared_steps"])
    name, entry = longest
    where = f" ({name} at step {entry['at_step']} after its primer, {entry['source']} at step {entry['source_step']})"
    return (
        f"  novelty: the longest passage found in a training piece is {entry['longest_shared_bars']:g} bars"
        + (where if entry["source"] else "")
        + f"; {novelty['mean_copied_bar_share']:.1%} of bars occur in training pieces; "
        f"{novelty['pieces_copying_4_bars_or_more']} of {len(novelty['pieces'])} pieces copy 4 bars or more "
        f"(transposition-invariant, primers left out; {novelty['seconds']:.2f} s for "
        f"{novelty['training_steps']:,} training steps)"
    )


RHYTHM_ROWS = {  # label: key of metrics.rhythm_statistics, and how its value is written
    "one-step notes": ("one_step_note_rate", "{:.1%}"),
    "mean note length (beats)": ("mean_note_beats", "{:.2f}"),
    "notes struck again": ("struck_again_rate", "{:.1%}"),
}


def format_rhythm(generated: dict) -> list[str]:
    """A small table for the terminal: the rhythm of generated music beside the real music's."""
    rhythms = [generated[side]["rhythm"] for side in ("generated", "real")]
    unit = rhythms[1]["position_unit"]
    rows = {
        f"onsets on each {unit} of the beat (%)": [
            "/".join(f"{100 * share:.1f}" for share in rhythm["onsets_by_position"])
            if rhythm["onsets_by_position"]
            else "-"
            for rhythm in rhythms
        ]
    }
    for label, (key, style) in RHYTHM_ROWS.items():
        rows[label] = [style.format(rhythm[key]) if rhythm[key] is not None else "-" for rhythm in rhythms]
    lines = [f"  {'rhythm':<38} {'generated':>22} {'real':>22}"]
    lines += [f"  {label:<38} {made:>22} {real:>22}" for label, (made, real) in rows.items()]
    if unit == "step":
        lines.append(
            f"  onsets by step, first step of the beat first: {rhythms[1]['steps_per_beat']} steps per beat do "
            "not divide a beat into sixteenths"
        )
    if rhythms[0]["struck_again_rate"] is None:
        lines.append(
            "  notes struck again: unknown, the real pieces' source tells no key struck again from a held one; "
            "notes on both sides are held runs of steps"
        )
    return lines


VOICE_ROWS = {  # label: key of voices.voice_statistics, and how its value is written
    "4-note steps": ("four_note_steps", "{:.1%}"),
    "3-note steps": ("three_note_steps", "{:.1%}"),
    "count changes per step": ("count_changes_per_step", "{:.3f}"),
    "parallel 5ths/8ves per 100 chord changes": ("parallels_per_100_changes", "{:.1f}"),
    "top voice moves of 1-2 semitones": ("top_steps_share", "{:.1%}"),
    "top voice leaps of 5+ semitones": ("top_leaps_share", "{:.1%}"),
    "phrase ends (held chords) per 64 steps": ("phrase_ends_per_64_steps", "{:.2f}"),
    "marked phrase ends (fermatas) per 64 steps": ("fermatas_per_64_steps", "{:.2f}"),
}


def format_voices(generated: dict) -> list[str]:
    """A small table for the terminal: the texture and voice leading of generated music beside the real music's."""
    voices = [generated[side]["voices"] for side in ("generated", "real")]
    lines = [f"  {'voices':<42} {'generated':>20} {'real':>20}"]
    for label, (key, style) in VOICE_ROWS.items():
        made, real = (style.format(side[key]) if side[key] is not None else "-" for side in voices)
        lines.append(f"  {label:<42} {made:>20} {real:>20}")
    return lines


def format_music(generated: dict) -> list[str]:
    """The lines of a judged folder for the terminal: generated beside real, their rhythm and voices, the
    two-sample test, novelty, skips."""
    lines = [f"  {'music':<24} {'density':>8} {'polyphony':>10} {'in key':>8} {'empty':>7} {'repeats':>8} {'KL':>6}"]
    for side in ("generated", "real"):
        row = generated[side]
        in_key = f"{row['in_key_rate']:.2f}" if row["in_key_rate"] is not None else "-"
        lines.append(
            f"  {side:<24} {row['note_density']:>8.2f} {row['polyphony']:>10.2f} {in_key:>8} "
            f"{row['empty_step_rate']:>7.2f} {row['repeated_window_rate']:>8.2f} "
            f"{row['pitch_class_kl_from_train']:>6.3f}"
        )
    target = generated["seed_targets"]["note_density_2_to_4"]
    lines += format_rhythm(generated)
    lines += format_voices(generated)
    lines.append(format_two_sample(generated["two_sample"]))
    lines.append(format_novelty(generated["novelty"]))
    lines += [f"  skipped {entry['name']}: {entry['reason']}" for entry in generated.get("skipped", [])]
    lines.append(
        f"  seed's target, 2-4 notes per step: {'passed' if target['passed'] else 'FAILED'} "
        f"({target['value']:.2f}); KL: pitch classes against the train split, nats"
    )
    return lines
