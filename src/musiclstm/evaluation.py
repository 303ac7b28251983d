"""Score a trained model on a corpus split: every frame of every piece predicted from its left context.

Each piece is read after `window` frames of silence (its lead-in, as in training), so its first
frame is predicted from silence and is scored too. Two contexts:
- `stateful`: the LSTM state is carried through the whole piece, one step per frame; the protocol
  of the polyphonic-music literature (Boulanger-Lewandowski et al. 2012; Bai et al. 2018).
- `window`: each frame is predicted from exactly the `window` frames before it, the state starting
  from zero each time; the seed's view, `window` steps of work per frame.
The two agree on a piece's first frame, read after `window` frames of silence in both. The model's
head gives each frame's NLL and its predicted frame; `metrics` turns them into the report.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import BEATS_PER_BAR, CONTEXTS, KEY_NAMES, CorpusConfig, MusicLSTMError
from musiclstm.corpus import Corpus, build_corpus, load_corpus
from musiclstm.dataset import with_lead_in
from musiclstm.files import check_output_folder, write_atomically
from musiclstm.metrics import (
    DENSITY_BINS,
    baseline_logits,
    bernoulli_report,
    kl_divergence,
    music_statistics,
    pitch_class_counts,
    predictive_report,
)
from musiclstm.model import MusicLSTM
from musiclstm.novelty import novelty_report
from musiclstm.roll import midi_to_roll
from musiclstm.run import load_model, model_folder, read_run_config
from musiclstm.two_sample import two_sample_test

WINDOWS_PER_BATCH = 256

log = logging.getLogger(__name__)


def check_context(context: str) -> None:
    if context not in CONTEXTS:
        raise MusicLSTMError(f"unknown context '{context}': choose one of {', '.join(CONTEXTS)}")


@torch.inference_mode()
def piece_features(model: MusicLSTM, roll: np.ndarray, context: str) -> Iterator[torch.Tensor]:
    """The features that predict every frame of a piece, each from the frames before it, in order.

    Yields them a chunk of frames at a time, (frames in the chunk, dense_units), so that scoring a
    long piece holds one chunk's features, never the whole piece's.
    """
    check_context(context)
    window, frames = model.config.window, len(roll)
    padded = torch.from_numpy(with_lead_in(np.asarray(roll, dtype=np.float32), window))  # (window + frames, 88)
    if context == "stateful":
        state, lead_in = None, window - 1  # the features after the lead-in's steps but its last predict nothing
        for chunk in model.chunks(padded[None, : window + frames - 1]):
            features, state = model(chunk, state, every_step=True)
            if len(features[0]) > lead_in:
                yield features[0, lead_in:]
            lead_in = max(0, lead_in - len(features[0]))
        return
    windows = padded.unfold(0, window, 1)[:frames].transpose(1, 2)  # (frames, window, 88): frame t sees t-window..t-1
    for batch in windows.split(WINDOWS_PER_BATCH):
        yield model(batch)[0]


@torch.inference_mode()
def score_piece(model: MusicLSTM, roll: np.ndarray, context: str) -> tuple[np.ndarray, np.ndarray, float]:
    """A piece's per-frame NLL (frames,), the head's predicted frames (frames, 88) and its summed training loss."""
    frames = torch.from_numpy(np.asarray(roll, dtype=np.float32))
    nll, predicted, loss, start = [], [], 0.0, 0
    for features in piece_features(model, roll, context):
        targets, start = frames[start : start + len(features)], start + len(features)
        nll.append(model.head.frame_nll(features, targets).numpy())
        predicted.append(model.head.predicted_frames(features).numpy())
        loss += float(model.head.loss(features, targets)) * len(targets)
    return np.concatenate(nll), np.concatenate(predicted), loss


def evaluate_model(
    model: MusicLSTM, corpus: Corpus, split: str = "test", context: str = "stateful", progress: bool = False
) -> dict:
    """Predictive metrics of a model on one split of a corpus, all frames pooled.

    Returns the report of `metrics.predictive_report` plus `nll_after_first` (each piece's first frame
    left out, the convention of Bai et al. 2018's code), `loss` (the training loss), `pieces`, `split`,
    `context`, `head`, `pos_weight`.
    """
    check_context(context)
    pieces = corpus.split(split)
    if not pieces:
        raise MusicLSTMError(f"{corpus.path}: the '{split}' split has no pieces")
    model.eval()
    nlls, predicted, rolls, loss = [], [], [], 0.0
    for piece in tqdm(pieces, desc=f"scoring {split} ({context})", unit="piece", disable=not progress):
        rolls.append(piece.roll)
        nll, frames, piece_loss = score_piece(model, rolls[-1], context)
        nlls.append(nll)
        predicted.append(frames)
        loss += piece_loss
    all_rolls = np.concatenate(rolls)
    after_first = np.concatenate([nll[1:] for nll in nlls])
    report = predictive_report(np.concatenate(nlls), np.concatenate(predicted), all_rolls)
    report.update(
        loss=loss / len(all_rolls),
        head=model.config.head,
        pos_weight=model.head.pos_weight,
        nll_after_first=float(after_first.mean()) if after_first.size else float("nan"),
        pieces=len(pieces),
        split=split,
        context=context,
        window=model.config.window,
        corpus=str(corpus.path),
    )
    return report


def open_data(data: str | Path, steps_per_beat: int, scratch: Path) -> Corpus:
    """A corpus folder as it is, or a benchmark file (.pickle/.pkl/.json) read into a corpus in `scratch`."""
    path = Path(data)
    if path.is_file():
        build_corpus(CorpusConfig(str(path), steps_per_beat=steps_per_beat), scratch / "corpus")
        return load_corpus(scratch / "corpus")
    return load_corpus(path)


def baseline_reports(corpus: Corpus, split: str) -> dict:
    """The two baselines of `metrics`, fitted on the train split, scored on `split` like the model."""
    train_rolls = [piece.roll for piece in corpus.split("train")]
    if not train_rolls:
        raise MusicLSTMError(
            f"{corpus.path}: no train split to fit the baselines on; use the whole corpus "
            "(for the bundled model: musiclstm data --source bach --out data/bach)"
        )
    rolls = [piece.roll for piece in corpus.split(split)]
    frames = np.concatenate(rolls)
    return {name: bernoulli_report(logits, frames) for name, logits in baseline_logits(rolls, train_rolls).items()}


def evaluate(
    data: str | Path,
    model: str | Path | None = None,
    split: str = "test",
    context: str | None = None,
    generated: str | Path | None = None,
    plots: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate a model on a corpus split, beside the two baselines.

    Args:
        data: a corpus folder or a benchmark file.
        model: a run or model folder (None: the bundled model).
        split: the split to score.
        context: `stateful` or `window` (None: the one the model's training taught, in config.json).
        generated: a folder of MIDI files to judge against the split's real music.
        plots: a folder for pitch-class and density figures, generated beside real (made, with the folders
            above it, when missing).

    Raises:
        MusicLSTMError: `plots` without `generated`, or a `plots` folder that cannot be written, refused
            before any work; and what the corpus, the model or the generated folder do not allow.
    """
    if plots is not None:
        if generated is None:
            raise MusicLSTMError(f"{plots}: the plots draw generated music beside real; give --generated too")
        check_output_folder(plots)
    folder = model_folder(model)
    settings = read_run_config(folder)
    steps_per_beat = settings["data"]["steps_per_beat"]
    with tempfile.TemporaryDirectory() as scratch:
        corpus = open_data(data, steps_per_beat, Path(scratch))
        if corpus.steps_per_beat != steps_per_beat:
            raise MusicLSTMError(
                f"{data}: {corpus.steps_per_beat} steps per beat, but the model in {folder} learned "
                f"{steps_per_beat}; build the corpus with --steps-per-beat {steps_per_beat}"
            )
        baselines = baseline_reports(corpus, split)  # before the model's scoring: a corpus without train fails fast
        judged = compare_generated(generated, corpus, split) if generated is not None else None
        report = evaluate_model(load_model(folder), corpus, split, context or settings["context"], progress)
        report.update(model=str(folder), corpus=str(data), baselines=baselines)
        if judged is not None:
            report["generated"] = judged
        if plots is not None:
            report["plots"] = plot_comparison(report.get("generated"), Path(plots))
    return report


def read_generated(folder: str | Path, steps_per_beat: int) -> tuple[dict[str, np.ndarray], dict | None, list[dict]]:
    """The rolls of every readable MIDI file in a folder (not recursive) by file name, read on the corpus's grid,
    with the primer left out where the piece's JSON gives its length (what is judged is what the model made); the
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
    rolls, read, skipped = {}, [], []
    for path in paths:
        try:
            roll = midi_to_roll(path, steps_per_beat).roll
            rolls[path.name] = continuation(roll, path)
            read.append(path)
        except MusicLSTMError as error:
            reason = str(error).removeprefix(f"{path}: ")
            log.warning("skipped %s: %s", path, reason)
            skipped.append({"name": path.name, "reason": reason})
    if not rolls:
        reasons = "; ".join(f"{entry['name']}: {entry['reason']}" for entry in skipped[:5])
        raise MusicLSTMError(f"{folder}: nothing to judge, no .mid file with steps of its own to read ({reasons})")
    return rolls, shared_settings(read), skipped


def continuation(roll: np.ndarray, midi_path: Path) -> np.ndarray:
    """The steps of a generated piece after its primer, which the JSON beside it gives (none without one).

    Raises:
        MusicLSTMError: the JSON cannot say where the primer ends, or nothing follows the primer.
    """
    steps = primer_steps(midi_path, len(roll))
    if steps == len(roll):
        what = f"after its {steps}-step primer" if steps else "in it"
        raise MusicLSTMError(f"{midi_path}: no steps {what} to judge")
    return roll[steps:]


def primer_steps(midi_path: Path, n_steps: int) -> int:
    """How many of a generated piece's `n_steps` steps are its primer, from the JSON `save_pieces` wrote beside it.

    A piece without a JSON, or whose JSON records no `primer_steps`, has none: music from elsewhere is judged whole.
    A JSON that is there but unreadable, not an object, or whose `primer_steps` is not a whole number from 0 to
    `n_steps` is refused: judging the piece whole would count a primer (real music, often) as the model's.

    Raises:
        MusicLSTMError: the JSON is there but does not say where the primer ends; the message names the JSON.
    """
    sidecar = midi_path.with_suffix(".json")
    if not sidecar.exists():
        return 0
    try:
        recorded = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise MusicLSTMError(f"{midi_path}: its {sidecar.name} is unreadable ({err})") from err
    if not isinstance(recorded, dict):
        raise MusicLSTMError(f"{midi_path}: its {sidecar.name} is a JSON {type(recorded).__name__}, not an object")
    steps = recorded.get("primer_steps", 0)
    if not isinstance(steps, int) or isinstance(steps, bool) or not 0 <= steps <= n_steps:
        raise MusicLSTMError(
            f"{midi_path}: its {sidecar.name} gives primer_steps {steps!r}, not a whole number from 0 to {n_steps} "
            "(the piece's steps), so where the model's music starts is unknown"
        )
    return steps


def shared_settings(midi_paths: list[Path]) -> dict | None:
    """The generation settings in the JSON beside each piece, when every piece has one and all agree but the seed."""
    found = []
    for path in midi_paths:
        try:
            settings = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["settings"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if not isinstance(settings, dict):
            return None
        found.append({name: value for name, value in settings.items() if name != "seed"})
    return found[0] if all(settings == found[0] for settings in found) else None


def compare_generated(folder: str | Path, corpus: Corpus, split: str) -> dict:
    """Judge generated pieces against the real pieces of a split, and against the seed's own targets."""
    pieces, settings, skipped = read_generated(folder, corpus.steps_per_beat)
    generated = list(pieces.values())
    real = [piece.roll for piece in corpus.split(split)]
    train = corpus.split("train")
    train_counts = pitch_class_counts(np.concatenate([piece.roll for piece in train]))
    result = {
        "generated": music_statistics(generated, corpus.steps_per_beat),
        "real": music_statistics(real, corpus.steps_per_beat),
    }
    for side, rolls in (("generated", generated), ("real", real)):
        result[side]["pitch_class_kl_from_train"] = kl_divergence(
            pitch_class_counts(np.concatenate(rolls)), train_counts
        )
    if settings is not None:
        result["settings"] = settings
    result["skipped"] = skipped
    result["two_sample"] = two_sample_test(real, generated, corpus.steps_per_beat)
    result["two_sample_accuracy"] = result["two_sample"]["accuracy"]
    bar = BEATS_PER_BAR * corpus.steps_per_beat
    result["novelty"] = novelty_report(pieces, [piece.roll for piece in train], [piece.name for piece in train], bar)
    density = result["generated"]["note_density"]
    result["seed_targets"] = {"note_density_2_to_4": {"value": density, "passed": 2.0 <= density <= 4.0}}
    return result


def plot_comparison(generated: dict | None, folder: Path) -> list[str]:
    """Draw the pitch-class histograms and densities of generated beside real music; return the files."""
    if generated is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def format_report(report: dict) -> str:
    """Render an evaluation report for the terminal, naming the context that produced it."""
    context = (
        "state carried through each whole piece"
        if report["context"] == "stateful"
        else f"each frame from the {report['window']} before it"
    )
    lines = [
        f"{report['model']} on the {report['split']} split of {report['corpus']}: {report['pieces']} pieces, "
        f"{report['frames']} frames; context: {report['context']} ({context})",
        f"  {'':<24} {'NLL':>8} {'frame acc':>10} {'precision':>10} {'recall':>8} {'F1':>7}",
    ]
    rows = [("model", report)] + [(f"baseline: {name}", row) for name, row in report["baselines"].items()]
    for name, row in rows:
        lines.append(
            f"  {name:<24} {row['nll']:>8.3f} {row['frame_accuracy']:>10.3f} {row['precision']:>10.3f} "
            f"{row['recall']:>8.3f} {row['f1']:>7.3f}"
        )
    scored = "the NADE head's exact NLL" if report.get("head") == "nade" else "calibrated probabilities"
    predicted = "of its greedy frame" if report.get("head") == "nade" else "at 0.5"
    lines += [
        f"  NLL: nats per frame, {scored}; frame accuracy: TP / (TP + FP + FN) {predicted} (Bay et al. 2009)",
        f"  model: NLL without each piece's first frame {report['nll_after_first']:.3f}; binary accuracy "
        f"{report['binary_accuracy']:.4f} (not a quality bar); training loss {report['loss']:.4f}",
    ]
    if "generated" in report:
        lines += format_music(report["generated"])
    for plot in report.get("plots", []):
        lines.append(f"  plot: {plot}")
    return "\n".join(lines)


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


def format_music(generated: dict) -> list[str]:
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
    lines.append(format_two_sample(generated["two_sample"]))
    lines.append(format_novelty(generated["novelty"]))
    lines += [f"  skipped {entry['name']}: {entry['reason']}" for entry in generated.get("skipped", [])]
    lines.append(
        f"  seed's target, 2-4 notes per step: {'passed' if target['passed'] else 'FAILED'} "
        f"({target['value']:.2f}); KL: pitch classes against the train split, nats"
    )
    return lines
