"""Train a MusicLSTM on a corpus with Lightning, writing a run folder that generation can load.

`train` is the one entry: a new run, or `resume=True` to continue one. Lightning supplies the loop,
early stopping, the plateau schedule, bf16 autocast, resume and DDP; torch the moving average of the
weights; the callbacks here the time budget that holds to the second and the cosine schedule that
ends with it. The model's head (`heads`) supplies the loss and the validation NLL; `run` owns the
folder's files (config.json before the first step, model.safetensors at every better validation
loss, the history, the checkpoint). The summary it returns says what was trained and how it ended.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader

from musiclstm.config import EPOCH_CAP, ModelConfig, MusicLSTMError, TrainConfig, with_values
from musiclstm.data.corpus import load_corpus
from musiclstm.files import check_output_folder
from musiclstm.network.dataset import ChunkDataset, PieceStreams, WindowDataset, key_frequencies
from musiclstm.network.model import MusicLSTM, check_bf16_lstm, split_targets
from musiclstm.network.run import (
    CHECKPOINTS,
    CONFIG_FILE,
    LAST_CHECKPOINT,
    WEIGHTS_FILE,
    check_checkpoint,
    new_run_config,
    read_history,
    read_run_config,
    run_configs,
    save_weights,
    trained_files,
    write_history,
    write_run_config,
)

log = logging.getLogger(__name__)

METRIC_COLUMNS = ("loss", "val_loss", "binary_accuracy", "val_binary_accuracy", "val_nll")


class LitMusicLSTM(L.LightningModule):
    """The Lightning wrapper: one shared step for training and validation, Adam and the plateau schedule."""

    def __init__(self, model_config: ModelConfig, train_config: TrainConfig):
        super().__init__()
        self.model = MusicLSTM(model_config, train_config.pos_weight)
        self.train_config = train_config
        self.carried = {}  # objective `stateful`: the LSTM state each stage's stream left, detached

    def predict(self, batch, stage: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (targets, dense_units) and step targets (targets, 264) of the batch, padding left out."""
        if self.train_config.objective == "last":
            inputs, target = batch
            features, _ = self.model(inputs)  # (batch, dense_units)
            return features, target
        if self.train_config.objective == "stateful":
            inputs, target, mask, first = batch
            state = None if first else self.carried[stage]
            features, state = self.model(inputs, state, every_step=True)
            self.carried[stage] = tuple((hidden.detach(), cell.detach()) for hidden, cell in state)
            features = features[:, -target.shape[1] :]  # the last `chunk` outputs predict the chunk
            return features[mask], target[mask]
        inputs, target, mask = batch
        features, _ = self.model(inputs, every_step=True)  # (batch, window + chunk - 1, dense_units)
        features = features[:, self.model.config.window - 1 :]  # (batch, chunk, dense_units), aligned with target
        return features[mask], target[mask]

    def shared_step(self, batch, stage: str) -> torch.Tensor:
        features, target = self.predict(batch, stage)
        loss = self.model.loss(features, target)
        prefix = "" if stage == "train" else "val_"
        self.log(f"{prefix}loss", loss, on_step=False, on_epoch=True, prog_bar=True, sync_dist=True)
        # the share of the targets x 88 sounding-key decisions the head gets right (not a quality bar)
        keys = split_targets(target)[0]
        accuracy = (self.model.decisions(features, target) == (keys > 0.5)).float().mean()
        self.log(f"{prefix}binary_accuracy", accuracy, on_step=False, on_epoch=True, sync_dist=True)
        if stage != "train":
            nll = self.model.frame_nll(features, target).mean().float()
            self.log("val_nll", nll, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(target))
        return loss

    def on_train_epoch_start(self) -> None:
        dataset = self.trainer.train_dataloader.dataset
        if hasattr(dataset, "set_epoch"):  # streams reshuffle by epoch, a resumed run's too
            dataset.set_epoch(self.current_epoch)

    def training_step(self, batch, batch_index):
        return self.shared_step(batch, "train")

    def validation_step(self, batch, batch_index):
        self.shared_step(batch, "valid")

    def configure_optimizers(self):
        config = self.train_config
        optimizer = torch.optim.AdamW(self.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        if config.schedule == "cosine":
            return optimizer  # the CosineRate callback sets the rate before every update
        schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=config.lr_factor, patience=config.lr_patience, min_lr=config.min_lr
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "monitor": "val_nll"}}


FILES_SECONDS = 1.0  # what an epoch's end takes beside its validation until measured: the checkpoint, the plot
MARGIN_SECONDS = 0.5  # for what follows the last epoch: Lightning's teardown, the summary


class Budget(Callback):
    """End training within `max_minutes` of the call to `train` (validation included, summed across resumed
    runs): after each update, stop if the next update and a validation would no longer fit, so the last
    weights are still validated, and the best of them saved, inside the budget."""

    def __init__(self, max_minutes: float, started: float, valid_batches: int):
        self.seconds = max_minutes * 60
        self.started = started
        self.valid_batches = valid_batches
        self.spent_before = 0.0
        self.updates = 0
        self.update_seconds = 0.0  # a moving mean of an update's time
        self.measured_validation: float | None = None  # the last validation and the epoch's files
        self.fraction_spent = 0.0  # as of the last update, for the schedule
        self.batch_started = started
        self.validation_started: float | None = None

    def spent(self) -> float:
        return self.spent_before + time.perf_counter() - self.started

    def validation_seconds(self) -> float:
        """The last validation's time; until one is measured, as long as an update per valid batch, and the files."""
        if self.measured_validation is not None:
            return self.measured_validation
        return self.update_seconds * self.valid_batches + FILES_SECONDS

    def reserve(self) -> float:
        """The time kept back for the last update, its validation and the files, with a margin for a slow one."""
        return 2 * self.update_seconds + 1.1 * self.validation_seconds() + MARGIN_SECONDS

    def fraction_of(self, spent: float) -> float:
        """The share spent of the time there is for updates: the budget less the reserve."""
        return min(spent / max(self.seconds - self.reserve(), 1e-9), 1.0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_index: int) -> None:
        self.batch_started = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_index: int) -> None:
        seconds = time.perf_counter() - self.batch_started
        self.updates += 1
        if self.updates == 1:  # the first update warms the kernels up: it says little of the others
            return
        self.update_seconds = seconds if self.updates == 2 else 0.9 * self.update_seconds + 0.1 * seconds
        spent = self.spent()
        # under DDP every process follows the first one's clock, or they would part ways
        stop, self.fraction_spent = trainer.strategy.broadcast(
            (spent + self.reserve() >= self.seconds, self.fraction_of(spent))
        )
        if stop:
            trainer.should_stop = True

    def on_validation_start(self, trainer, pl_module) -> None:
        self.validation_started = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.validation_started is not None:  # the validation and the epoch's files (checkpoint, plot)
            self.measured_validation = time.perf_counter() - self.validation_started

    def state_dict(self) -> dict:
        return {"spent": self.spent()}

    def load_state_dict(self, state_dict: dict) -> None:
        self.spent_before = state_dict["spent"]
        self.fraction_spent = self.fraction_of(self.spent_before)


class AveragedWeights(Callback):
    """Keep an exponential moving average of the network's weights, its time constant one epoch's updates,
    and put it in place of the weights for every validation, so the average is what is validated and
    what `BestWeights` saves (it must come after `BestWeights` in the callbacks); training goes on from
    the weights themselves, and the checkpoint keeps both."""

    def __init__(self):
        self.average: AveragedModel | None = None
        self.stored: dict | None = None
        self.pending: dict | None = None  # a resumed run's average, until the first update makes the copy

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_index: int) -> None:
        if self.average is None:  # made here, where the epoch's length is known
            decay = 1 - 1 / max(trainer.num_training_batches, 1)
            self.average = AveragedModel(pl_module.model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
            if self.pending is not None:
                self.average.load_state_dict(self.pending)
        self.average.update_parameters(pl_module.model)

    def on_validation_start(self, trainer, pl_module) -> None:
        if self.average is not None:
            self.stored = {name: value.clone() for name, value in pl_module.model.state_dict().items()}
            pl_module.model.load_state_dict(self.average.module.state_dict())

    def on_validation_end(self, trainer, pl_module) -> None:
        if self.stored is not None:
            pl_module.model.load_state_dict(self.stored)
            self.stored = None

    def state_dict(self) -> dict:
        return {"average": self.average.state_dict()} if self.average is not None else {}

    def load_state_dict(self, state_dict: dict) -> None:  # a checkpoint is restored before the first update
        self.pending = state_dict.get("average")


class CosineRate(Callback):
    """Before every update, set the rate on a half cosine from `lr` down to `min_lr` by the share of the run
    done: of its time budget, or of its epochs' updates, whichever is nearer its end."""

    def __init__(self, config: TrainConfig, budget: Budget | None):
        self.config, self.budget = config, budget

    def fraction_done(self, trainer) -> float:
        done = self.budget.fraction_spent if self.budget else 0.0
        if self.config.epochs:
            done = max(done, trainer.global_step / (self.config.epochs * max(trainer.num_training_batches, 1)))
        return min(done, 1.0)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_index: int) -> None:
        low, high = self.config.min_lr, self.config.lr
        rate = low + (high - low) * (1 + math.cos(math.pi * self.fraction_done(trainer))) / 2
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = rate


class BestWeights(Callback):
    """Write model.safetensors whenever the validation NLL improves: the quantity the docs report."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.best = float("inf")

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or "val_nll" not in trainer.callback_metrics:
            return
        val_nll = float(trainer.callback_metrics["val_nll"])
        if val_nll < self.best:
            self.best = val_nll
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


class Interrupted(MusicLSTMError):
    """Training was stopped by a signal; `exit_status` is the shell's convention for it (128 + its number)."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


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

    def __init__(self, run_dir: Path, print_epochs: bool = False):
        self.run_dir = run_dir
        self.print_epochs = print_epochs
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
            if self.print_epochs:
                print(format_epoch(row), file=sys.stderr, flush=True)


def format_epoch(row: dict) -> str:
    """One epoch's line, for output that is not a terminal (where a progress bar would be one line per redraw)."""
    return (
        f"epoch {row['epoch']}: loss {row['loss']:.4f}, validation NLL {row['val_nll']:.3f}, "
        f"rate {row['lr']:.2g}, {row['minutes']:.2f} min"
    )


def make_dataset(corpus, split: str, model_config: ModelConfig, train_config: TrainConfig):
    """The examples of a split for the run's objective; only training examples are transposed."""
    transpose = train_config.transpose and split == "train"
    if train_config.objective == "last":
        return WindowDataset(corpus, split, model_config.window, transpose, model_config.inputs)
    if train_config.objective == "stateful":
        return PieceStreams(
            corpus,
            split,
            train_config.batch_size,
            model_config.window,
            train_config.chunk,
            transpose=transpose,
            shuffle=split == "train",
            seed=train_config.seed,
            inputs=model_config.inputs,
        )
    return ChunkDataset(corpus, split, model_config.window, train_config.chunk, transpose, model_config.inputs)


def make_loader(dataset, train_config: TrainConfig, shuffle: bool) -> DataLoader:
    """Streams come batched already; other datasets are batched and, for training, shuffled."""
    if isinstance(dataset, PieceStreams):
        return DataLoader(dataset, batch_size=None)
    return DataLoader(dataset, batch_size=train_config.batch_size, shuffle=shuffle)


def make_trainer(
    run_dir: Path, config: TrainConfig, progress: bool, print_epochs: bool, started: float, valid_batches: int
) -> L.Trainer:
    distributed = config.devices > 1 or config.num_nodes > 1
    budget = Budget(config.max_minutes, started, valid_batches) if config.max_minutes else None
    if config.schedule == "cosine":
        ending = [CosineRate(config, budget)]
    else:
        ending = [EarlyStopping(monitor="val_nll", mode="min", patience=config.early_stop_patience)]
    callbacks = [
        FiniteLoss(),
        BestWeights(run_dir),
        *([AveragedWeights()] if config.average else []),  # after BestWeights: the average is what it saves
        History(run_dir, print_epochs),
        *([budget] if budget else []),
        *ending,
        # monitor None with top-k 1 rewrites one file every epoch; Lightning's save_last alone never saves with top-k 0
        AtomicCheckpoint(
            dirpath=run_dir / CHECKPOINTS,
            filename=Path(LAST_CHECKPOINT).stem,
            save_top_k=1,
            enable_version_counter=False,
        ),
    ]
    return L.Trainer(
        max_epochs=config.epochs or EPOCH_CAP,
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


def kept_files(run_dir: Path) -> str:
    kept = [name for name in (WEIGHTS_FILE, f"{CHECKPOINTS}/{LAST_CHECKPOINT}") if (run_dir / name).is_file()]
    return ", ".join(kept) or "nothing yet"


def check_new_run_folder(run_dir: Path) -> None:
    """Refuse to start a new run over a folder holding a trained one; a config.json alone (a run that failed
    before its first epoch ended) is written over."""
    trained = trained_files(run_dir)
    if f"{CHECKPOINTS}/{LAST_CHECKPOINT}" in trained:
        raise MusicLSTMError(f"{run_dir}: already holds a run; add --resume to continue it, or choose another --out")
    if trained:
        raise MusicLSTMError(
            f"{run_dir}: already holds a trained model ({', '.join(trained)}) but no checkpoint to resume from; "
            "choose another --out, or remove the folder to start over"
        )
    log.info("%s: holds only the config.json of a run that trained nothing; starting it again", run_dir)


def next_step(run_dir: Path) -> str:
    """What an interrupted run kept and how to go on: --resume from a checkpoint, else the same command again."""
    if not (run_dir / CHECKPOINTS / LAST_CHECKPOINT).is_file():
        return "No epoch had finished, so nothing was kept; run the same command again to start over."
    kept = kept_files(run_dir)
    return f"Kept from the last finished epochs: {kept}. Continue with: musiclstm train --out {run_dir} --resume"


def runs_on_cpu(accelerator: str) -> bool:
    """Whether Lightning will train on the CPU with this accelerator setting ('auto' picks a GPU when there is one)."""
    if accelerator == "auto":
        return not (torch.cuda.is_available() or torch.backends.mps.is_available())
    return accelerator == "cpu"


def quiet_lightning() -> None:
    """Keep Lightning's device banners, tips and warnings out of the output unless debug logging is on."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
        warnings.filterwarnings("ignore", module="lightning")


def configs_of_run(
    data: str | Path | None,
    run_dir: Path,
    model_config: ModelConfig | None,
    train_config: TrainConfig | None,
    resume: bool,
    changes: dict,
) -> tuple[str | Path, ModelConfig, TrainConfig]:
    """The corpus, network and training settings of a new run, or of the run in `run_dir` being resumed."""
    if not resume:
        if data is None:
            raise MusicLSTMError("training needs a corpus folder (--data), or --resume to continue a run")
        return data, model_config or ModelConfig(), changed(train_config or TrainConfig(), changes)
    if train_config is not None:
        raise MusicLSTMError("a resumed run keeps its training settings; give only the ones to change")
    stored = read_run_config(run_dir)
    stored_model, stored_train = run_configs(stored, run_dir)
    if model_config is not None and model_config != stored_model:
        raise MusicLSTMError(f"{run_dir}: a resumed run keeps its network; leave out the model settings")
    return stored["data"]["corpus"], stored_model, changed(stored_train, changes)


def changed(train_config: TrainConfig, changes: dict) -> TrainConfig:
    return with_values(TrainConfig, changes, train_config, kind="training")


def train(
    data: str | Path | None,
    run_dir: str | Path,
    model_config: ModelConfig | None = None,
    train_config: TrainConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = False,
    print_epochs: bool = False,
    **changes,
) -> dict:
    """Train on a corpus's train split, validating on its valid split; return a short summary.

    Args:
        data: a corpus folder made by `build_corpus` (with `resume`, None: the run's own).
        run_dir: the run folder to write, or with `resume` the one to continue from its last checkpoint.
        model_config: the network (default the seed preset; a resumed run keeps its own).
        train_config: how to train (default `TrainConfig()`; a resumed run keeps its own).
        resume: continue the run in `run_dir` (epoch, optimiser, schedule, early-stopping state, budget spent).
        progress: show Lightning's progress bar (for a terminal).
        print_epochs: print one line per epoch to stderr (for a log, where a progress bar cannot be read).
        changes: fields of TrainConfig to change, such as `epochs=60` to take a resumed run further.

    Raises:
        MusicLSTMError: the corpus cannot be used, `run_dir` already holds a run (without `resume`),
            there is nothing to resume, or a setting is bad.
    """
    started = time.perf_counter()  # the budget counts from here: reading the corpus is part of the run
    run_dir = check_output_folder(run_dir)
    checkpoint = check_checkpoint(run_dir) if resume else None
    data, model_config, train_config = configs_of_run(data, run_dir, model_config, train_config, resume, changes)
    train_config = train_config.resolved()
    if train_config.precision == "bf16-mixed" and runs_on_cpu(train_config.accelerator):
        check_bf16_lstm()  # else oneDNN fails in the first batch, after the folder is written
    is_launcher = rank_zero_only.rank == 0  # DDP re-runs this function in every process; rank 0 decides
    if is_launcher and not resume and (run_dir / CONFIG_FILE).exists():
        check_new_run_folder(run_dir)
    corpus = load_corpus(data)
    train_set, valid_set = (make_dataset(corpus, split, model_config, train_config) for split in ("train", "valid"))
    L.seed_everything(train_config.seed, workers=True, verbose=False)
    if is_launcher:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_run_config(run_dir, new_run_config(corpus, model_config, train_config))
    quiet_lightning()
    train_loader = make_loader(train_set, train_config, shuffle=True)
    valid_loader = make_loader(valid_set, train_config, shuffle=False)
    trainer = make_trainer(run_dir, train_config, progress, print_epochs, started, len(valid_loader))
    module = LitMusicLSTM(model_config, train_config)
    if train_config.start_biases and not resume:
        module.model.head.start_from(key_frequencies(corpus))
    try:
        trainer.fit(
            module,
            train_loader,
            valid_loader,
            ckpt_path=checkpoint,
            weights_only=True,  # torch's restricted unpickler: a hostile checkpoint cannot run code
        )
    except NonFiniteLoss as stop:
        raise NonFiniteLoss(
            f"{run_dir}: {stop}. Kept from the last good epochs: {kept_files(run_dir)}. "
            "Try a lower --lr or --grad-clip 1, then --resume."
        ) from None
    except SystemExit as stop:  # how Lightning ends a fit on SIGTERM, and after Ctrl-C (with status 1)
        name, status = ("SIGTERM", 143) if isinstance(stop, SIGTERMException) else ("Ctrl-C (SIGINT)", 130)
        raise Interrupted(
            f"{run_dir}: training stopped by {name} during epoch {trainer.current_epoch}. " + next_step(run_dir), status
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
        "ended_by": ended_by(trainer, train_config, len(history)),
    }


def ended_by(trainer: L.Trainer, config: TrainConfig, epochs: int) -> str:
    """What ended a finished fit: early stopping, the epoch cap or the time budget."""
    if trainer.early_stopping_callback and trainer.early_stopping_callback.stopped_epoch > 0:
        return f"early stopping (no better validation NLL in {config.early_stop_patience} epochs)"
    if epochs >= trainer.max_epochs:
        return f"the epoch cap ({trainer.max_epochs})"
    return f"the time budget ({config.max_minutes:g} minutes)"


def format_training(result: dict) -> str:
    """The line a finished training run is summed up in."""
    return (
        f"Trained {result['epochs']} epochs in {result['seconds']} s, ended by {result['ended_by']}: "
        f"best validation NLL {result['best_val_nll']:.3f} nats per frame (val_loss {result['best_val_loss']:.4f})."
        f" Model in {result['run']}"
    )
