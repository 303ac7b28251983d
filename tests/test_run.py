"""A run folder on disk: config.json, weights, history, and the checks that name a damaged folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from musiclstm import BUNDLED_MODEL, MusicLSTMError
from musiclstm.config import MODEL_PRESETS, TrainConfig
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import as_events, encode
from musiclstm.network.run import (
    find_model_folders,
    load_model,
    model_folder,
    new_run_config,
    read_history,
    save_weights,
    write_history,
    write_run_config,
)

SMALL = MODEL_PRESETS["small"]


def write_run(tmp_path, model, config=SMALL):
    class FakeCorpus:  # new_run_config only reads these
        path, source, steps_per_beat = tmp_path, "bach", 4

        @staticmethod
        def phrase_bars() -> None:
            return None

    tmp_path.mkdir(parents=True, exist_ok=True)
    write_run_config(tmp_path, new_run_config(FakeCorpus, config, TrainConfig().resolved()))
    save_weights(model, tmp_path)


def test_save_then_load_gives_identical_outputs(tmp_path):
    model = MusicLSTM(SMALL).eval()
    write_run(tmp_path, model)
    loaded = load_model(tmp_path)
    rolls = encode(as_events((torch.rand(2, 16, 88) < 0.1).numpy()), 0, model.config.inputs)
    assert not loaded.training
    assert torch.equal(loaded(rolls)[0], model(rolls)[0])


def test_load_model_names_what_is_wrong_with_a_folder(tmp_path):
    with pytest.raises(MusicLSTMError, match="not a model folder \\(no config.json\\)"):
        load_model(tmp_path)
    write_run(tmp_path, MusicLSTM(SMALL))
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps(dict(config, format_version=99)))
    with pytest.raises(MusicLSTMError, match="model format 99 is not the supported 1"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(dict(config, model=dict(config["model"], lstm_units=65))))
    with pytest.raises(MusicLSTMError, match="weights do not load into this model"):
        load_model(tmp_path)


def test_a_loaded_model_calibrates_with_the_pos_weight_it_was_trained_with(tmp_path):
    write_run(tmp_path, MusicLSTM(SMALL))
    config = json.loads((tmp_path / "config.json").read_text())
    assert load_model(tmp_path).head.pos_weight == config["train"]["pos_weight"] == 10.0


def test_the_history_reads_back_as_written_with_its_picture(tmp_path):
    rows = [
        dict(epoch=epoch, loss=1.0 / (epoch + 1), val_loss=0.5, binary_accuracy=0.9, val_binary_accuracy=0.8,
             val_nll=4.0 - epoch, lr=1e-3, minutes=0.5 * epoch)
        for epoch in range(3)
    ]  # fmt: skip
    write_history(tmp_path, rows)
    assert read_history(tmp_path) == rows
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_history(tmp_path / "nothing") == []


def test_finding_runs_takes_folders_with_config_and_weights_and_none_means_the_bundled_model(tmp_path):
    write_run(tmp_path / "runs" / "b", MusicLSTM(SMALL))
    write_run(tmp_path / "runs" / "a", MusicLSTM(SMALL))
    (tmp_path / "runs" / "a" / "model.safetensors").unlink()  # training has not saved a best epoch yet
    (tmp_path / "runs" / "notes").mkdir()
    assert find_model_folders(tmp_path / "runs") == [tmp_path / "runs" / "b"]
    assert find_model_folders(tmp_path / "runs" / "b", tmp_path / "runs") == [tmp_path / "runs" / "b"]
    assert model_folder(None) == BUNDLED_MODEL and model_folder("runs/x") == Path("runs/x")
