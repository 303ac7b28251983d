"""Training with Lightning on real chorales: the loss falls, the run folder is whole, resume and DDP work."""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from musiclstm import MusicLSTMError, train
from musiclstm.config import MODEL_PRESETS, TrainConfig
from musiclstm.network.dataset import key_frequencies
from musiclstm.network.heads import IndependentHead
from musiclstm.network.model import bf16_lstm_problem
from musiclstm.network.run import load_model, read_history, train_config_of, trained_files
from musiclstm.network.training import make_dataset, next_step

SMALL = MODEL_PRESETS["small"]
CONSOLE = str(Path(sys.executable).with_name("musiclstm"))
NEEDS_BF16_LSTM = pytest.mark.skipif(
    bf16_lstm_problem() is not None, reason=f"this CPU has no bf16 LSTM in oneDNN: {bf16_lstm_problem()}"
)


def test_training_on_real_chorales_lowers_the_loss_and_writes_a_whole_run(bach_corpus, tmp_path):
    result = train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(objective="last", epochs=4))
    history = read_history(tmp_path / "run")
    assert [row["epoch"] for row in history] == [0, 1, 2, 3] and result["epochs"] == 4
    assert history[-1]["loss"] < history[0]["loss"] * 0.95  # the first epoch starts at each key's frequency
    assert min(row["val_loss"] for row in history[1:]) < history[0]["val_loss"]
    for name in ("config.json", "model.safetensors", "history.csv", "history.png", "checkpoints/last.ckpt"):
        assert (tmp_path / "run" / name).is_file(), name
    assert result["best_val_loss"] == min(row["val_loss"] for row in history)
    assert load_model(tmp_path / "run").config == SMALL


def test_resume_after_an_interrupted_run_continues_from_the_saved_epoch(bach_corpus, tmp_path):
    run = tmp_path / "run"
    train(bach_corpus.path, run, SMALL, TrainConfig(epochs=2))
    first = read_history(run)
    train(None, run, resume=True, epochs=4)
    history = read_history(run)
    assert [row["epoch"] for row in history] == [0, 1, 2, 3]
    assert history[:2] == first
    assert load_model(run).config == SMALL
    with pytest.raises(MusicLSTMError, match="a resumed run keeps its network"):
        train(None, run, MODEL_PRESETS["seed"], resume=True, epochs=5)
    with pytest.raises(MusicLSTMError, match="unknown training setting"):
        train(None, run, resume=True, epoch=5)


def test_the_weights_of_the_best_validation_nll_are_the_ones_saved(bach_corpus, tmp_path):
    train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=3, lr=3e-3, average=False))
    saved = load_file(tmp_path / "run" / "model.safetensors")
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=False)
    best_epoch = min(read_history(tmp_path / "run"), key=lambda row: row["val_nll"])["epoch"]
    is_last = torch.equal(saved["head.bias"], checkpoint["state_dict"]["model.head.bias"])
    assert is_last == (best_epoch == 2)


def test_the_time_budget_ends_a_run_that_early_stopping_would_not(bach_corpus, tmp_path):
    result = train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(max_minutes=0.15, early_stop_patience=1000))
    assert result["ended_by"] == "the time budget (0.15 minutes)"
    assert 2 <= result["epochs"] < 1000 and read_history(tmp_path / "run")[-1]["minutes"] == pytest.approx(
        0.15, abs=0.1
    )


def test_a_one_minute_budget_ends_within_the_minute_and_saves_a_model_that_loads(bach_corpus, tmp_path):
    """As a user runs it, output to a file: one line per epoch as it ends, and the run over inside its minute."""
    run = tmp_path / "run"
    command = [CONSOLE, "train", "--data", str(bach_corpus.path), "--out", str(run), "--max-minutes", "1", "--json"]
    done = subprocess.run([*command, "--lstm-units", "128"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    history = read_history(run)
    assert result["ended_by"] == "the time budget (1 minutes)" and result["seconds"] <= 60
    assert history[-1]["minutes"] <= 1 and len(history) >= 2
    assert done.stderr.count("validation NLL") == len(history) and done.stderr.startswith("epoch 0: loss ")
    assert load_model(run).config.lstm_units == 128


def test_a_budget_shorter_than_an_epoch_stops_inside_it_and_still_validates_and_saves(bach_corpus, tmp_path):
    """Objective `last` with batches of one: an epoch is an update per step of the pieces, thousands."""
    run = tmp_path / "run"
    config = TrainConfig(objective="last", max_minutes=0.25, batch_size=1)
    result = train(bach_corpus.path, run, SMALL, config)
    history = read_history(run)
    batches = len(make_dataset(bach_corpus, "train", SMALL, config))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert result["seconds"] <= 15 and len(history) >= 1 and math.isfinite(history[-1]["val_nll"])
    assert checkpoint["global_step"] % batches != 0  # the last epoch was cut short by the budget
    assert load_model(run).config == SMALL


def test_the_cosine_schedule_falls_to_its_end_at_the_last_epoch_and_at_the_budget(bach_corpus, tmp_path):
    train(bach_corpus.path, tmp_path / "epochs", SMALL, TrainConfig(epochs=4, lr=3e-3))
    rates = [row["lr"] for row in read_history(tmp_path / "epochs")]
    assert rates[0] == pytest.approx(3e-3) and rates == sorted(rates, reverse=True) and rates[2] < 2e-3
    assert last_rate(tmp_path / "epochs") < 0.01 * 3e-3
    result = train(bach_corpus.path, tmp_path / "budget", SMALL, TrainConfig(max_minutes=0.2, lr=3e-3))
    assert result["ended_by"] == "the time budget (0.2 minutes)"
    assert last_rate(tmp_path / "budget") < 0.05 * 3e-3


def test_a_run_without_an_end_takes_the_plateau_schedule_and_early_stopping():
    assert TrainConfig().resolved().schedule == "plateau"
    assert TrainConfig(max_minutes=5).resolved().schedule == "cosine"
    assert TrainConfig(epochs=5).resolved().schedule == "cosine"
    assert TrainConfig(epochs=5, schedule="plateau").resolved().schedule == "plateau"
    with pytest.raises(MusicLSTMError, match="unknown schedule 'linear'"):
        TrainConfig(schedule="linear")


def test_with_average_the_moving_average_is_what_is_validated_saved_and_loaded(bach_corpus, tmp_path):
    run = tmp_path / "run"
    train(bach_corpus.path, run, SMALL, TrainConfig(epochs=2, average=True, lr=3e-3))
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    average = checkpoint["callbacks"]["AveragedWeights"]["average"]
    history = read_history(run)
    saved = load_file(run / "model.safetensors")
    assert history[1]["val_nll"] < history[0]["val_nll"]  # so the saved weights are the last epoch's average
    assert torch.equal(saved["head.bias"], average["module.head.bias"])
    assert not torch.equal(saved["head.bias"], checkpoint["state_dict"]["model.head.bias"])
    assert int(average["n_averaged"]) == checkpoint["global_step"]
    assert torch.equal(load_model(run).head.bias, average["module.head.bias"])


def test_a_run_made_before_the_recipe_resumes_with_the_plateau_schedule_and_no_average():
    written_then = {key: value for key, value in TrainConfig().to_dict().items() if key not in ("schedule", "average")}
    config = train_config_of({"train": written_then})
    assert (config.schedule, config.average) == ("plateau", False)


def last_rate(run: Path) -> float:
    """The learning rate of a run's last update, from its checkpoint."""
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    return checkpoint["optimizer_states"][0]["param_groups"][0]["lr"]


def test_without_a_budget_or_an_epoch_cap_early_stopping_on_validation_nll_ends_training(bach_corpus, tmp_path):
    result = train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(lr=0.05, early_stop_patience=2))
    history = read_history(tmp_path / "run")
    best = min(range(len(history)), key=lambda epoch: history[epoch]["val_nll"])
    assert result["ended_by"] == "early stopping (no better validation NLL in 2 epochs)"
    assert len(history) == best + 3 and result["best_val_nll"] == history[best]["val_nll"]


def test_training_refuses_to_overwrite_a_run_and_to_resume_nothing(bach_corpus, tmp_path):
    with pytest.raises(MusicLSTMError, match="nothing to resume"):
        train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=1), resume=True)
    train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=1))
    with pytest.raises(MusicLSTMError, match="already holds a run; add --resume"):
        train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=1))
    (tmp_path / "run" / "checkpoints" / "last.ckpt").unlink()  # weights of a finished epoch, nothing to resume
    with pytest.raises(
        MusicLSTMError, match=r"already holds a trained model \(model.safetensors, history.csv\) but no"
    ):
        train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=1))


@NEEDS_BF16_LSTM
def test_bf16_mixed_precision_trains(bach_corpus, tmp_path):
    train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=1, precision="bf16-mixed"))
    assert math.isfinite(read_history(tmp_path / "run")[0]["val_loss"])


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="ONEDNN_MAX_CPU_ISA=AVX2 is an x86 limit")
def test_bf16_training_on_a_cpu_without_a_bf16_lstm_is_refused_in_one_line_before_the_run_folder(bach_corpus, tmp_path):
    """ONEDNN_MAX_CPU_ISA=AVX2 makes oneDNN behave as on an AVX2-only CPU, which fails in the first batch."""
    command = [CONSOLE, "train", "--data", str(bach_corpus.path), "--out", str(tmp_path / "run"), "--preset", "small"]
    done = subprocess.run(
        [*command, "--epochs", "1", "--precision", "bf16-mixed", "--accelerator", "cpu"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"},
    )
    assert (done.returncode, done.stderr) == (
        2,
        "musiclstm: error: --precision bf16-mixed: this CPU has no bf16 LSTM in oneDNN (AVX2 only); "
        "use --precision 32\n",
    )
    assert not (tmp_path / "run").exists()


def test_a_run_killed_before_its_first_epoch_ended_starts_again_in_its_folder_without_resume(bach_corpus, tmp_path):
    run = tmp_path / "run"
    command = [CONSOLE, "train", "--data", str(bach_corpus.path), "--out", str(run), "--preset", "small"]
    slow = subprocess.Popen([*command, "--batch-size", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120  # batches of one make the first epoch long: the kill lands inside it
    while not (run / "config.json").exists() and slow.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    slow.send_signal(signal.SIGKILL)
    slow.wait(timeout=30)
    assert (run / "config.json").is_file() and trained_files(run) == []
    assert next_step(run) == "No epoch had finished, so nothing was kept; run the same command again to start over."
    with pytest.raises(
        MusicLSTMError, match="nothing to resume .*: no epoch finished; start it again without --resume"
    ):
        train(None, run, resume=True)
    again = subprocess.run([*command, "--epochs", "1"], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert [row["epoch"] for row in read_history(run)] == [0] and load_model(run).config == SMALL


# objectives all and stateful and both heads under DDP, each once: two processes cost about 10 s a case
@pytest.mark.parametrize(("objective", "head"), [("stateful", "independent"), ("all", "nade")])
def test_ddp_with_two_cpu_processes_runs_a_short_fit(bach_corpus, tmp_path, objective, head):
    command = shutil.which("musiclstm", path=str(Path(sys.executable).parent))
    done = subprocess.run(
        [
            command,
            "train",
            "--data",
            str(bach_corpus.path),
            "--out",
            str(tmp_path / "ddp"),
            "--preset",
            "small",
            "--epochs",
            "2",
            "--accelerator",
            "cpu",
            "--devices",
            "2",
            "--objective",
            objective,
            "--head",
            head,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count('"rank": 0') == 1  # one report, from rank 0
    history = read_history(tmp_path / "ddp")
    assert [row["epoch"] for row in history] == [0, 1] and history[1]["loss"] < history[0]["loss"]
    assert load_model(tmp_path / "ddp").config == replace(SMALL, head=head)


def test_objective_all_lowers_the_loss_on_real_chorales_and_teaches_the_stateful_context(bach_corpus, tmp_path):
    result = train(
        bach_corpus.path,
        tmp_path / "run",
        SMALL,
        TrainConfig(objective="all", chunk=32, batch_size=8, epochs=4, pos_weight=1.0),
    )
    history = read_history(tmp_path / "run")
    assert history[-1]["loss"] < history[0]["loss"] * 0.98  # the first epoch starts at each key's frequency
    assert history[-1]["val_nll"] < history[0]["val_nll"]
    assert result["train_sequences"] == sum(-(-piece.frames // 32) for piece in bach_corpus.split("train"))
    import json

    assert json.loads((tmp_path / "run" / "config.json").read_text())["context"] == "stateful"


@pytest.mark.parametrize("objective", ["last", "all"])
def test_a_model_trained_with_either_objective_scores_in_either_context(bach_corpus, tmp_path, objective):
    from musiclstm import evaluate

    train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(objective=objective, chunk=32, epochs=1))
    for context in ("window", "stateful"):
        report = evaluate(bach_corpus.path, tmp_path / "run", "test", context)
        assert report["context"] == context and 0 < report["nll"] < 88
    assert evaluate(bach_corpus.path, tmp_path / "run")["context"] == ("window" if objective == "last" else "stateful")


def test_a_nan_loss_stops_training_naming_the_epoch_and_step_and_keeps_the_last_good_epoch(
    bach_corpus, tmp_path, monkeypatch
):
    run = tmp_path / "run"
    train(bach_corpus.path, run, SMALL, TrainConfig(epochs=2))
    kept = {name: (run / name).read_bytes() for name in ("model.safetensors", "checkpoints/last.ckpt", "history.csv")}
    calls = []

    weighted_loss = IndependentHead.loss

    def poisoned_on_the_second_training_step(head, features, frames):
        loss = weighted_loss(head, features, frames)
        calls.extend([1] if torch.is_grad_enabled() else [])  # validation runs without gradients
        return loss * float("nan") if len(calls) == 2 and torch.is_grad_enabled() else loss

    monkeypatch.setattr(IndependentHead, "loss", poisoned_on_the_second_training_step)
    with pytest.raises(MusicLSTMError, match=r"loss became nan at epoch 2, step 1 of the epoch") as stop:
        train(None, run, resume=True, epochs=4)
    assert "Kept from the last good epochs: model.safetensors, checkpoints/last.ckpt" in str(stop.value)
    assert {name: (run / name).read_bytes() for name in kept} == kept
    assert all(torch.isfinite(tensor).all() for tensor in load_file(run / "model.safetensors").values())


def test_a_nan_validation_loss_stops_training_too(bach_corpus, tmp_path, monkeypatch):
    weighted_loss = IndependentHead.loss

    def nan_in_validation(head, features, frames):
        loss = weighted_loss(head, features, frames)
        return loss if torch.is_grad_enabled() else loss * float("nan")

    monkeypatch.setattr(IndependentHead, "loss", nan_in_validation)
    with pytest.raises(MusicLSTMError, match=r"validation loss became nan after epoch 0"):
        train(bach_corpus.path, tmp_path / "run", SMALL, TrainConfig(epochs=3))
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_piece_read_as_a_stream_in_chunks_scores_as_one_pass_over_the_whole_piece(bach_corpus):
    """Objective `stateful`: the state carried from chunk to chunk gives each frame the NLL of the stateful context."""
    from musiclstm.judging.evaluation import score_piece
    from musiclstm.network.dataset import PieceStreams
    from musiclstm.network.reading import as_events
    from musiclstm.network.training import LitMusicLSTM

    small = replace(SMALL, window=8)
    module = LitMusicLSTM(small, TrainConfig(objective="stateful")).eval()
    streams = PieceStreams(bach_corpus, "valid", batch_size=3, window=8, chunk=5, inputs=small.inputs)
    nll, targets = 0.0, 0
    with torch.no_grad():
        for batch in streams:
            features, targets_read = module.predict(batch, "valid")
            nll += float(module.model.frame_nll(features, targets_read).sum())
            targets += len(targets_read)
    pieces = bach_corpus.split("valid")
    whole = sum(
        float(score_piece(module.model, as_events(piece.roll, piece.onsets), "stateful", piece.grid)[0].sum())
        for piece in pieces
    )
    assert targets == sum(piece.frames for piece in pieces) and len(list(streams)) == len(streams)
    assert nll == pytest.approx(whole, rel=1e-5)


def test_objective_stateful_lowers_the_loss_and_resumes(bach_corpus, tmp_path):
    run = tmp_path / "run"
    train(bach_corpus.path, run, SMALL, TrainConfig(objective="stateful", chunk=16, epochs=2, lr=1e-3))
    train(None, run, resume=True, epochs=3)
    history = read_history(run)
    assert [row["epoch"] for row in history] == [0, 1, 2] and history[-1]["val_nll"] < history[0]["val_nll"]
    assert load_model(run).config == SMALL


def test_a_new_run_starts_each_keys_output_bias_at_its_log_odds_in_the_training_split(bach_corpus, tmp_path):
    rolls = np.concatenate([piece.roll for piece in bach_corpus.split("train")])
    frequencies = key_frequencies(bach_corpus)
    assert frequencies.numpy() == pytest.approx((rolls.sum(axis=0) + 1) / (len(rolls) + 2))
    tiny_steps = TrainConfig(epochs=1, lr=1e-9)
    train(bach_corpus.path, tmp_path / "started", SMALL, tiny_steps)
    train(bach_corpus.path, tmp_path / "zero", SMALL, replace(tiny_steps, start_biases=False))
    started, zero = load_model(tmp_path / "started").head, load_model(tmp_path / "zero").head
    no_features = torch.zeros(1, SMALL.dense_units + 88)  # no features, nothing sounding the step before
    calibrated = torch.sigmoid(started.calibrated_logits(no_features))[0]  # the pos_weight of 10 undone
    assert calibrated.detach().numpy() == pytest.approx(frequencies.numpy(), rel=1e-3)
    assert zero.bias.abs().max() < 1e-6
