"""A run folder on disk: what training writes and what generation, evaluation and export read.

runs/NAME/
  config.json            architecture, data (corpus, steps per beat), training settings, versions
  model.safetensors      the best weights by validation loss
  history.csv / .png     one row per epoch: loss, val_loss, binary_accuracy, val_binary_accuracy,
                         val_nll, lr, minutes (wall-clock, summed across resumed runs)
  checkpoints/last.ckpt  Lightning's checkpoint of the last finished epoch, for resuming

A model folder made by `musiclstm export` holds the same config.json and weights. Every file is
written atomically; loading never unpickles anything, and a damaged folder is named with the
reason. Nothing here imports Lightning.
"""

from __future__ import annotations

import csv
import io
import math
import pickle
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from musiclstm.config import (
    CONTEXT_TAUGHT_BY,
    CONTEXTS,
    MAX_STEPS_PER_BEAT,
    MODEL_FORMAT_VERSION,
    VERSION,
    ModelConfig,
    MusicLSTMError,
    TrainConfig,
    bundled_model,
)
from musiclstm.files import pyplot, read_json_object, write_bytes_atomically, write_json_atomically
from musiclstm.network.model import MusicLSTM

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
HISTORY_CSV = "history.csv"
HISTORY_PNG = "history.png"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "binary_accuracy", "val_binary_accuracy", "val_nll", "lr", "minutes")


def model_folder(model: str | Path | None) -> Path:
    """The folder of a model the user named, or of the bundled model when they named none."""
    return bundled_model() if model is None else Path(model)


def new_run_config(corpus, model_config: ModelConfig, train_config: TrainConfig) -> dict:
    """The run's config.json: everything needed to rebuild, resume or judge the model."""
    return {
        "format_version": MODEL_FORMAT_VERSION,
        "musiclstm_version": VERSION,
        "torch_version": torch.__version__,
        "context": CONTEXT_TAUGHT_BY[train_config.objective],  # how generation and evaluation read by default
        "model": model_config.to_dict(),
        "train": train_config.to_dict(),
        "data": {
            "corpus": str(corpus.path.resolve()),
            "source": corpus.source,
            "steps_per_beat": corpus.steps_per_beat,
            "phrase_bars": corpus.phrase_bars(),  # how far apart its marked phrase ends lie; None: unmarked
        },
    }


def write_run_config(run_dir: Path, config: dict) -> None:
    write_json_atomically(Path(run_dir) / CONFIG_FILE, config)


def read_run_config(run_dir: str | Path) -> dict:
    """Read a model folder's config.json, checking its format version and the parts that are used."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise MusicLSTMError(f"{run_dir}: not a model folder (no {CONFIG_FILE})")
    config = read_json_object(path)
    if config.get("format_version") != MODEL_FORMAT_VERSION:
        found = config.get("format_version")
        raise MusicLSTMError(
            f"{path}: model format {found} is not the supported {MODEL_FORMAT_VERSION}; "
            "retrain it or use the musiclstm version that made it"
        )
    problem = run_config_problem(config)
    if problem:
        raise MusicLSTMError(f"{path}: {problem}")
    return config


def run_config_problem(config: dict) -> str | None:
    """What is wrong with a config.json's parts that generation and evaluation read, or None."""
    sections = {name: config.get(name) for name in ("model", "data", "train")}
    missing = [name for name, section in sections.items() if not isinstance(section, dict)]
    if missing:
        return f"no '{missing[0]}' section"
    steps_per_beat = sections["data"].get("steps_per_beat")
    if not isinstance(steps_per_beat, int) or not 1 <= steps_per_beat <= MAX_STEPS_PER_BEAT:
        return f"data.steps_per_beat must be a whole number from 1 to {MAX_STEPS_PER_BEAT}, got {steps_per_beat!r}"
    if not isinstance(sections["data"].get("corpus"), str):
        return "data.corpus must be a path"
    pos_weight = sections["train"].get("pos_weight")
    if not isinstance(pos_weight, (int, float)) or not 0 < pos_weight < math.inf:
        return f"train.pos_weight must be a positive number, got {pos_weight!r}"
    if config.get("context", "window") not in CONTEXTS:
        return f"context must be one of {', '.join(CONTEXTS)}, got {config.get('context')!r}"
    return None


def model_config_of(config: dict) -> ModelConfig:
    """The network of a config.json. Folders written before a setting existed get what they were made with:
    the independent head, the keys alone as input, no strike head, a head reading the features alone."""
    made_with = {"head": "independent", "inputs": ["keys"], "strikes": False, "head_reads_previous": False}
    return ModelConfig(**{**made_with, **config["model"]})


def train_config_of(config: dict) -> TrainConfig:
    """The training settings of a config.json. Runs made before a setting existed resume as they were made:
    the plateau schedule, no moving average."""
    made_with = {"schedule": "plateau", "average": False}
    return TrainConfig(**{**made_with, **config["train"]})


def run_configs(config: dict, path: Path) -> tuple[ModelConfig, TrainConfig]:
    """The settings objects of a config.json, each refused with the file's name when it is not valid."""
    try:
        return model_config_of(config), train_config_of(config)
    except (TypeError, MusicLSTMError) as err:
        raise MusicLSTMError(f"{path / CONFIG_FILE}: bad settings ({err})") from err


def save_weights(model: MusicLSTM, run_dir: Path) -> None:
    """Write the model's weights as safetensors, atomically."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    write_bytes_atomically(Path(run_dir) / WEIGHTS_FILE, save(tensors))


def load_model(run_dir: str | Path) -> MusicLSTM:
    """Rebuild a model from its folder, in eval mode, on the CPU.

    The weights file's tensor names and shapes are compared with the config's network before that
    network is built (on torch's meta device, which allocates nothing), so a config claiming a huge
    model is refused at once rather than after gigabytes of allocation.

    Raises:
        MusicLSTMError: the folder, its config or its weights are missing, damaged or do not match.
    """
    run_dir = Path(run_dir)
    run_config = read_run_config(run_dir)
    try:
        model_config = model_config_of(run_config)
        with torch.device("meta"):
            built = MusicLSTM(model_config, initialise=False)
            shapes = {name: tuple(tensor.shape) for name, tensor in built.state_dict().items()}
    except (TypeError, MusicLSTMError) as err:
        raise MusicLSTMError(f"{run_dir / CONFIG_FILE}: bad 'model' section ({err})") from err
    weights_path = run_dir / WEIGHTS_FILE
    if not weights_path.exists():
        raise MusicLSTMError(f"{run_dir}: no {WEIGHTS_FILE}; has training saved a best epoch yet?")
    if not weights_path.is_file():
        raise MusicLSTMError(f"{weights_path}: not a regular file")
    try:
        with safe_open(weights_path, "pt") as stored:
            stored_shapes = {name: tuple(stored.get_slice(name).get_shape()) for name in stored.keys()}
        mismatch = weights_mismatch(shapes, stored_shapes)
        if mismatch:
            raise MusicLSTMError(f"{weights_path}: weights do not load into this model ({mismatch})")
        weights = load_file(weights_path)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise MusicLSTMError(f"{weights_path}: weights do not load ({err})") from err
    model = MusicLSTM(model_config, run_config["train"]["pos_weight"], initialise=False)
    model.load_state_dict(weights)
    return model.eval()


def weights_mismatch(expected: dict[str, tuple], stored: dict[str, tuple]) -> str | None:
    """The first way the stored tensors' names and shapes differ from the model's, or None."""
    unmatched = sorted(expected.keys() ^ stored.keys())
    if unmatched:
        return f"{unmatched[0]} is {'missing' if unmatched[0] in expected else 'not part of the model'}"
    for name, shape in expected.items():
        if stored[name] != shape:
            return f"{name} has shape {stored[name]}, config.json makes it {shape}"
    return None


def find_model_folders(*roots: str | Path) -> list[Path]:
    """The model folders in `roots`: each root itself if it is one, else its sub-folders that are, sorted."""
    found = []
    for root in map(Path, roots):
        candidates = [root] if (root / CONFIG_FILE).is_file() else sorted(root.glob("*/")) if root.is_dir() else []
        found += [
            folder for folder in candidates if (folder / CONFIG_FILE).is_file() and (folder / WEIGHTS_FILE).is_file()
        ]
    return list(dict.fromkeys(found))


def read_history(run_dir: Path) -> list[dict]:
    """The rows of a run's history.csv, numbers parsed; none when there is no file yet."""
    path = Path(run_dir) / HISTORY_CSV
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as file:
        return [
            {key: int(value) if key == "epoch" else float(value) for key, value in row.items()}
            for row in csv.DictReader(file)
        ]


def write_history(run_dir: Path, rows: list[dict]) -> None:
    """Rewrite history.csv and history.png from all the rows so far."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomically(Path(run_dir) / HISTORY_CSV, text.getvalue().encode("utf-8"))
    write_bytes_atomically(Path(run_dir) / HISTORY_PNG, plot_history(rows))


def plot_history(rows: list[dict]) -> bytes:
    """Draw loss and val_loss, validation NLL, binary accuracy and the learning rate per epoch; return PNG bytes."""
    plt = pyplot()

    epochs = [row["epoch"] + 1 for row in rows]
    figure, (losses, nll, accuracy, rate) = plt.subplots(1, 4, figsize=(17, 3.8))
    losses.plot(epochs, [row["loss"] for row in rows], marker="o", label="training")
    losses.plot(epochs, [row["val_loss"] for row in rows], marker="o", label="validation")
    losses.set(title="Weighted BCE loss", xlabel="epoch")
    losses.legend()
    nll.plot(epochs, [row["val_nll"] for row in rows], marker="o", color="C1")
    nll.set(title="Validation NLL (nats per frame)", xlabel="epoch")
    accuracy.plot(epochs, [row["binary_accuracy"] for row in rows], marker="o", label="training")
    accuracy.plot(epochs, [row["val_binary_accuracy"] for row in rows], marker="o", label="validation")
    accuracy.set(title="Binary accuracy (not a quality bar)", xlabel="epoch")
    accuracy.legend()
    rate.plot(epochs, [row["lr"] for row in rows], marker="o")
    rate.set(title="Learning rate", xlabel="epoch", yscale="log")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def trained_files(run_dir: Path) -> list[str]:
    """The files of a run folder that training made after config.json: weights, history, checkpoint.

    A run that fails before its first epoch ends (a crash, a kill) leaves config.json alone; such a
    folder holds nothing trained and may be started again from scratch.
    """
    names = (WEIGHTS_FILE, HISTORY_CSV, f"{CHECKPOINTS}/{LAST_CHECKPOINT}")
    return [name for name in names if (Path(run_dir) / name).exists()]


def last_checkpoint(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS / LAST_CHECKPOINT


def check_checkpoint(run_dir: Path) -> Path:
    """The run's resume checkpoint, refused when missing, damaged or not plain data before Lightning reads it.

    torch's restricted unpickler (`weights_only=True`) builds only tensors and plain containers, so a
    crafted file cannot run code; whatever it refuses is named here instead of surfacing as a traceback.
    """
    path = last_checkpoint(run_dir)
    if not path.is_file():
        is_started = (Path(run_dir) / CONFIG_FILE).is_file() and not trained_files(run_dir)
        again = ": no epoch finished; start it again without --resume" if is_started else ""
        raise MusicLSTMError(f"{run_dir}: nothing to resume (no {CHECKPOINTS}/{LAST_CHECKPOINT}){again}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MusicLSTMError(f"{path}: not a checkpoint that can be resumed ({reason})") from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "optimizer_states", "epoch"} <= checkpoint.keys():
        raise MusicLSTMError(f"{path}: not a checkpoint that can be resumed (missing its state)")
    return path
