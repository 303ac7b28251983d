"""Score a trained model on a corpus split: every frame of every piece predicted from its left context.

Each piece is read after `window` frames of silence (the lead-in training used), so its first frame
is predicted from silence and is scored too. Two contexts:
- `stateful`: the LSTM state is carried through the whole piece, one step per frame; the protocol
  of the polyphonic-music literature (Boulanger-Lewandowski et al. 2012; Bai et al. 2018).
- `window`: each frame is predicted from exactly the `window` frames before it, the state starting
  from zero each time; the seed's view, `window` steps of work per frame.
The two agree on a piece's first frame, read after `window` frames of silence in both.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from musiclstm.config import CONTEXTS, KEY_NAMES, CorpusConfig, MusicLSTMError
from musiclstm.corpus import Corpus, build_corpus, load_corpus
from musiclstm.files import write_atomically
from musiclstm.metrics import (
    DENSITY_BINS,
    baseline_logits,
    bernoulli_nll,
    kl_divergence,
    music_statistics,
    pitch_class_counts,
    predictive_report,
    weighted_loss,
)
from musiclstm.model import MusicLSTM, load_model, read_run_config
from musiclstm.roll import midi_to_roll

WINDOWS_PER_BATCH = 256


def check_context(context: str) -> None:
    if context not in CONTEXTS:
        raise MusicLSTMError(f"unknown context '{context}': choose one of {', '.join(CONTEXTS)}")


@torch.inference_mode()
def piece_logits(model: MusicLSTM, roll: np.ndarray, context: str) -> np.ndarray:
    """The model's logits for every frame of a piece, shape (frames, 88), each from the frames before it."""
    check_context(context)
    window, frames = model.config.window, len(roll)
    padded = torch.zeros(window + frames, roll.shape[1])
    padded[window:] = torch.from_numpy(np.asarray(roll, dtype=np.float32))
    if context == "stateful":
        logits, _ = model(padded[None, : window + frames - 1], every_step=True)  # (1, window + frames - 1, 88)
        return logits[0, window - 1 :].numpy()
    windows = padded.unfold(0, window, 1)[:frames].transpose(1, 2)  # (frames, window, 88): frame t sees t-window..t-1
    return torch.cat([model(batch)[0] for batch in windows.split(WINDOWS_PER_BATCH)]).numpy()


def evaluate_model(
    model: MusicLSTM,
    corpus: Corpus,
    split: str = "test",
    context: str = "stateful",
    pos_weight: float = 1.0,
    progress: bool = False,
) -> dict:
    """Predictive metrics of a model on one split of a corpus, all frames pooled.

    A model trained with `pos_weight` w is scored on its calibrated probabilities, logits - ln w (see
    `train.calibrate`); the training loss in the report uses the raw logits, as training did.
    Returns the report of `metrics.predictive_report` plus `nll_after_first` (each piece's first frame
    left out, the convention of Bai et al. 2018's code), `loss`, `pieces`, `split`, `context`, `pos_weight`.
    """
    check_context(context)
    pieces = corpus.split(split)
    if not pieces:
        raise MusicLSTMError(f"{corpus.path}: the '{split}' split has no pieces")
    model.eval()
    logits, rolls = [], []
    for piece in tqdm(pieces, desc=f"scoring {split} ({context})", unit="piece", disable=not progress):
        rolls.append(piece.roll)
        logits.append(piece_logits(model, rolls[-1], context))
    raw, all_rolls = np.concatenate(logits), np.concatenate(rolls)
    shift = math.log(pos_weight)
    after_first = np.concatenate([bernoulli_nll(z[1:] - shift, r[1:]) for z, r in zip(logits, rolls, strict=True)])
    report = predictive_report(raw - shift, all_rolls)
    report.update(
        loss=weighted_loss(raw, all_rolls, pos_weight),
        pos_weight=pos_weight,
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
    return {name: predictive_report(logits, frames) for name, logits in baseline_logits(rolls, train_rolls).items()}


def evaluate_run(
    run_dir: str | Path,
    data: str | Path,
    split: str = "test",
    context: str | None = None,
    generated: str | Path | None = None,
    plots: str | Path | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate a run folder's model on a corpus split, beside the two baselines.

    `data` is a corpus folder or a benchmark file; `context` defaults to the one the model's training
    taught (config.json). With `generated`, a folder of MIDI files is judged against the split's real
    music; with `plots`, pitch-class and density figures are written there.
    """
    settings = read_run_config(run_dir)
    steps_per_beat = settings["data"]["steps_per_beat"]
    with tempfile.TemporaryDirectory() as scratch:
        corpus = open_data(data, steps_per_beat, Path(scratch))
        if corpus.steps_per_beat != steps_per_beat:
            raise MusicLSTMError(
                f"{data}: {corpus.steps_per_beat} steps per beat, but the model in {run_dir} learned "
                f"{steps_per_beat}; build the corpus with --steps-per-beat {steps_per_beat}"
            )
        baselines = baseline_reports(corpus, split)  # before the model's scoring: a corpus without train fails fast
        judged = compare_generated(generated, corpus, split) if generated is not None else None
        report = evaluate_model(
            load_model(run_dir),
            corpus,
            split,
            context or settings["context"],
            settings["train"]["pos_weight"],
            progress,
        )
        report.update(model=str(run_dir), corpus=str(data), baselines=baselines)
        if judged is not None:
            report["generated"] = judged
        if plots is not None:
            report["plots"] = plot_comparison(report.get("generated"), Path(plots))
    return report


def read_generated(folder: str | Path, steps_per_beat: int) -> list[np.ndarray]:
    """The rolls of every MIDI file in a folder (not recursive), read on the corpus's grid."""
    paths = sorted(p for p in Path(folder).glob("*") if p.suffix.lower() in (".mid", ".midi"))
    if not paths:
        raise MusicLSTMError(f"{folder}: no .mid files to judge")
    return [midi_to_roll(path, steps_per_beat).roll for path in paths]


def compare_generated(folder: str | Path, corpus: Corpus, split: str) -> dict:
    """Judge generated pieces against the real pieces of a split, and against the seed's own targets."""
    generated = read_generated(folder, corpus.steps_per_beat)
    real = [piece.roll for piece in corpus.split(split)]
    train_counts = pitch_class_counts(np.concatenate([piece.roll for piece in corpus.split("train")]))
    result = {
        "generated": music_statistics(generated, corpus.steps_per_beat),
        "real": music_statistics(real, corpus.steps_per_beat),
    }
    for side, rolls in (("generated", generated), ("real", real)):
        result[side]["pitch_class_kl_from_train"] = kl_divergence(
            pitch_class_counts(np.concatenate(rolls)), train_counts
        )
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
