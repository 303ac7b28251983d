"""Train a MusicLSTM on a corpus with Lightning, writing a run folder that generation can load.

The run folder holds `config.json` (written before the first step), `model.safetensors` (the best
weights by validation loss, rewritten whenever it improves, so the saved model is always the best
one), `history.csv` and `history.png` (one row per epoch: loss, val_loss, binary_accuracy,
val_binary_accuracy, lr), and `checkpoints/last.ckpt` for `--resume`. Lightning supplies the loop,
early stopping, the plateau schedule, bf16 autocast, the time budget, resume and DDP.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import pickle
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from torch.utils.data import DataLoader

from musiclstm.config import (
    CONTEXT_TAUGHT_BY,
    MODEL_FORMAT_VERSION,
    VERSION,
    ModelConfig,
    MusicLSTMError,
    TrainConfig,
)
from musiclstm.corpus import load_corpus
from musiclstm.dataset import ChunkDataset, WindowDataset
from musiclstm.files import write_bytes_atomically, write_json_atomically
from musiclstm.model import CONFIG_FILE, WEIGHTS_FILE, MusicLSTM, read_run_config, save_weights

log = logging.getLogger(__name__)

HISTORY_CSV = "history.csv"
HISTORY_PNG = "history.png"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"
HISTORY_COLUMNS = ("epoch", "loss", "val_loss", "binary_accuracy", "val_binary_accuracy", "val_nll", "lr", "minutes")
METRIC_COLUMNS = ("loss", "val_loss", "binary_accuracy", "val_binary_accuracy", "val_nll")


def weighted_bce(logits: torch.Tensor, target: torch.Tensor, pos_weight: float) -> torch.Tensor:
    """Mean binary cross-entropy over keys and examples, a sounding note weighted `pos_weight`, a silent one 1."""
    weight = 1 + (pos_weight - 1) * target
    return F.binary_cross_entropy_with_logits(logits.float(), target, weight=weight)


def calibrate(logits, pos_weight: float):
    """Undo the loss weighting: the model's logits minus ln(pos_weight) are calibrated log-odds.

    Weighted BCE is minimised where the predicted odds are pos_weight times the true odds, so
    training with pos_weight w shifts every logit by ln w; shifting back gives honest probabilities.
    """
    return logits - math.log(pos_weight)


def binary_accuracy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Share of the 88 x examples key decisions right at probability 0.5 (Keras's binary_accuracy)."""
    return ((logits > 0) == (target > 0.5)).float().mean()


class LitMusicLSTM(L.LightningModule):
    """The Lightning wrapper: one shared step for training and validation, Adam and the plateau schedule."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig):
        super().__init__()
        self.model = MusicLSTM(model_config)
        self.train_config = train_config

    def predict(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and targets of the batch's target frames, (targets, 88) each, padding left out."""
        if self.train_config.objective == "last":
            inputs, target = batch
            logits, _ = self.model(inputs)  # (batch, 88)
            return logits, target
        inputs, target, mask = batch
        logits, _ = self.model(inputs, every_step=True)  # (batch, window + chunk - 1, 88)
        logits = logits[:, self.model.config.window - 1 :]  # (batch, chunk, 88), aligned with target
        return logits[mask], target[mask]

    def shared_step(self, batch, stage: str) -> torch.Tensor:
        logits, target = self.predict(batch)
        loss = weighted_bce(logits, target, self.train_config.pos_weight)
        prefix = "" if stage == "train" else "val_"
        self.log(f"{prefix}loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        self.log(
            f"{prefix}binary_accuracy", binary_accuracy(logits, target), on_step=False, on_epoch=True, sync_dist=True
        )
        if stage != "train":
            calibrated = calibrate(logits.float(), self.train_config.pos_weight)
            nll = F.binary_cross_entropy_with_logits(calibrated, target, reduction="none").sum(-1).mean()
            self.log("val_nll", nll, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(target))
        return loss

    def training_step(self, batch, batch_index):
        return self.shared_step(batch, "train")

    def validation_step(self, batch, batch_index):
        self.shared_step(batch, "valid")

    def configure_optimizers(self):
        config = self.train_config
        optimizer = torch.optim.Adam(self.parameters(), lr=config.lr)
        schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "monitor": "val_loss"}}


class BestWeights(Callback):
    """Write model.safetensors whenever validation loss improves: the checkpoint on best val_loss."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.best = float("inf")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or "val_loss" not in trainer.callback_metrics:
            return
        val_loss = float(trainer.callback_metrics["val_loss"])
        if val_loss < self.best:
            self.best = val_loss
            if trainer.is_global_zero:
                save_weights(pl_module.model, self.run_dir)

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict) -> None:
        self.best = state_dict["best"]


class AtomicCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that writes beside the file and renames it: a kill mid-write leaves the old one whole."""

    def _save_checkpoint(self, trainer, filepath: str) -> None:
        partial = f"{filepath}.partial"
        super()._save_checkpoint(trainer, partial)
        if trainer.is_global_zero:
            os.replace(partial, filepath)
        self._last_checkpoint_saved = filepath


class NonFiniteLoss(MusicLSTMError):
    """The training loss became NaN or infinite."""


class FiniteLoss(Callback):
    """Stop at the first NaN or infinite training loss, before the update it would poison is taken.

    Raising here aborts the fit before any checkpoint of the epoch is written, so model.safetensors
    (the best epoch) and checkpoints/last.ckpt (the last finished epoch) stay as they were. A
    non-finite validation loss stops training the same way.
    """

    def __init__(self):
        self.batch_index = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_index: int) -> None:
        self.batch_index = batch_index

    def on_before_backward(self, trainer, pl_module, loss: torch.Tensor) -> None:
        if not torch.isfinite(loss):
            raise NonFiniteLoss(
                f"the training loss became {loss.detach().item()} at epoch {trainer.current_epoch}, "
                f"step {self.batch_index} of the epoch (update {trainer.global_step}); training stopped"
            )

    def on_validation_end(self, trainer, pl_module) -> None:
        val_loss = trainer.callback_metrics.get("val_loss")
        if val_loss is not None and not torch.isfinite(val_loss):
            raise NonFiniteLoss(
                f"the validation loss became {float(val_loss)} after epoch {trainer.current_epoch}; training stopped"
            )


class History(Callback):
    """Keep one row per epoch in history.csv and redraw history.png; a resumed run continues the file.

    `minutes` is wall-clock training time, validation included, summed across resumed runs.
    """

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.rows: list[dict] = []
        self.lr = float("nan")
        self.started = time.perf_counter()
        self.minutes_before = 0.0

    def on_train_start(self, trainer, pl_module) -> None:  # after a checkpoint has restored the epoch
        self.rows = [row for row in read_history(self.run_dir) if row["epoch"] < trainer.current_epoch]
        self.minutes_before = self.rows[-1]["minutes"] if self.rows else 0.0
        self.started = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        row = {"epoch": trainer.current_epoch, "lr": self.lr}
        row.update({column: float(metrics.get(column, float("nan"))) for column in METRIC_COLUMNS})
        row["minutes"] = round(self.minutes_before + (time.perf_counter() - self.started) / 60, 3)
        self.rows.append(row)
        if trainer.is_global_zero:
            write_history(self.run_dir, self.rows)


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
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=HISTORY_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_bytes_atomically(run_dir / HISTORY_CSV, text.getvalue().encode("utf-8"))
    write_bytes_atomically(run_dir / HISTORY_PNG, plot_history(rows))


def plot_history(rows: list[dict]) -> bytes:
    """Draw loss and val_loss, binary accuracy and the learning rate per epoch; return PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def run_settings(corpus, model_config: ModelConfig, train_config: TrainConfig) -> dict:
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
        },
    }


def resumed_configs(run_dir: Path, **train_overrides) -> tuple[str, ModelConfig, TrainConfig]:
    """The corpus, model and training settings a run was started with; `train_overrides` replace some."""
    settings = read_run_config(run_dir)
    train_config = replace(TrainConfig(**settings["train"]), **train_overrides)
    return settings["data"]["corpus"], ModelConfig(**settings["model"]), train_config


def make_dataset(corpus, split: str, model_config: ModelConfig, train_config: TrainConfig):
    """The examples of a split for the run's objective; only training examples are transposed."""
    transpose = train_config.transpose and split == "train"
    if train_config.objective == "last":
        return WindowDataset(corpus, split, model_config.window, transpose)
    return ChunkDataset(corpus, split, model_config.window, train_config.chunk, transpose)


def make_trainer(run_dir: Path, config: TrainConfig, progress: bool) -> L.Trainer:
    distributed = config.devices > 1 or config.num_nodes > 1
    callbacks = [
        FiniteLoss(),
        BestWeights(run_dir),
        History(run_dir),
        EarlyStopping(monitor="val_loss", mode="min", patience=config.early_stop_patience),
        # monitor None with top-k 1 rewrites one file every epoch; Lightning's save_last alone never saves with top-k 0
        AtomicCheckpoint(
            dirpath=run_dir / CHECKPOINTS,
            filename=Path(LAST_CHECKPOINT).stem,
            save_top_k=1,
            enable_version_counter=False,
        ),
    ]
    return L.Trainer(
        max_epochs=config.epochs,
        max_time=timedelta(minutes=config.max_minutes) if config.max_minutes else None,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision="32-true" if config.precision == "32" else config.precision,
        gradient_clip_val=config.grad_clip,
        callbacks=callbacks,
        logger=False,
        enable_progress_bar=progress,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=run_dir,
    )


def check_checkpoint(path: Path) -> None:
    """Refuse a resume checkpoint that is missing, damaged or not plain data, before Lightning reads it.

    torch's restricted unpickler (`weights_only=True`) builds only tensors and plain containers, so a
    crafted file cannot run code; whatever it refuses is named here instead of surfacing as a traceback.
    """
    if not path.is_file():
        raise MusicLSTMError(f"{path.parent.parent}: nothing to resume (no {CHECKPOINTS}/{LAST_CHECKPOINT})")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError, AttributeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise MusicLSTMError(f"{path}: not a checkpoint that can be resumed ({reason})") from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "optimizer_states", "epoch"} <= checkpoint.keys():
        raise MusicLSTMError(f"{path}: not a checkpoint that can be resumed (missing its state)")


def train(
    corpus_dir: str | Path,
    run_dir: str | Path,
    model_config: ModelConfig,
    train_config: TrainConfig,
    resume: bool = False,
    progress: bool = False,
) -> dict:
    """Train on a corpus's train split, validating on its valid split; return a short summary.

    Raises:
        MusicLSTMError: the corpus cannot be used, `run_dir` already holds a run (without `resume`),
            or there is nothing to resume.
    """
    run_dir = Path(run_dir)
    checkpoint = run_dir / CHECKPOINTS / LAST_CHECKPOINT
    if resume:
        check_checkpoint(checkpoint)
    is_launcher = rank_zero_only.rank == 0  # DDP re-runs this function in every process; rank 0 decides
    if is_launcher and not resume and (run_dir / CONFIG_FILE).exists():
        raise MusicLSTMError(f"{run_dir}: already holds a run; add --resume to continue it, or choose another --out")
    corpus = load_corpus(corpus_dir)
    train_set, valid_set = (make_dataset(corpus, split, model_config, train_config) for split in ("train", "valid"))
    L.seed_everything(train_config.seed, workers=True, verbose=False)
    if is_launcher:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomically(run_dir / CONFIG_FILE, run_settings(corpus, model_config, train_config))
    trainer = make_trainer(run_dir, train_config, progress)
    module = LitMusicLSTM(model_config, train_config)
    started = time.perf_counter()
    try:
        trainer.fit(
            module,
            DataLoader(train_set, batch_size=train_config.batch_size, shuffle=True),
            DataLoader(valid_set, batch_size=train_config.batch_size),
            ckpt_path=checkpoint if resume else None,
            weights_only=True,  # torch's restricted unpickler: a hostile checkpoint cannot run code
        )
    except NonFiniteLoss as stop:
        kept = [name for name in (WEIGHTS_FILE, f"{CHECKPOINTS}/{LAST_CHECKPOINT}") if (run_dir / name).is_file()]
        raise NonFiniteLoss(
            f"{run_dir}: {stop}. Kept from the last good epochs: {', '.join(kept) or 'nothing yet'}. "
            "Try a lower --lr or --grad-clip 1, then --resume."
        ) from None
    history = read_history(run_dir)
    return {
        "rank": trainer.global_rank,  # under DDP every process returns; only rank 0 should report
        "run": str(run_dir),
        "epochs": len(history),
        "best_val_loss": min((row["val_loss"] for row in history), default=float("nan")),
        "best_val_nll": min((row["val_nll"] for row in history), default=float("nan")),
        "train_sequences": len(train_set),
        "valid_sequences": len(valid_set),
        "seconds": round(time.perf_counter() - started, 1),
        "stopped_early": trainer.early_stopping_callback.stopped_epoch > 0,
    }
