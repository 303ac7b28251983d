"""Model folders are untrusted input: each damage gets one clear message and exit 2, and nothing is unpickled."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONSOLE = str(Path(sys.executable).with_name("musiclstm"))


def damaged_copy(run: Path, folder: Path, damage) -> Path:
    copy = shutil.copytree(run, folder)
    damage(copy)
    return copy


def edit_config(change):
    def damage(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        change(config)
        (folder / "config.json").write_text(json.dumps(config))

    return damage


def truncate_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def flip_weight_bytes(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[:8] = (10**12).to_bytes(8, "little")  # a header length far beyond the file
    (folder / "model.safetensors").write_bytes(bytes(data))


def replace_weights_with_a_link_to_dev_zero(folder: Path) -> None:
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to("/dev/zero")


DAMAGES = {
    "truncated weights": (truncate_weights, "model.safetensors: weights do not load"),
    "altered weights header": (flip_weight_bytes, "model.safetensors: weights do not load"),
    "weights missing": (lambda folder: (folder / "model.safetensors").unlink(), "no model.safetensors"),
    "wrong shapes": (edit_config(lambda c: c["model"].update(lstm_units=32)), "weights do not load into this model"),
    "unknown model field": (edit_config(lambda c: c["model"].update(attention=True)), "bad 'model' section"),
    "absurd size": (edit_config(lambda c: c["model"].update(lstm_units=10**9)), "lstm_units must be a whole number"),
    "newer version": (edit_config(lambda c: c.update(format_version=99)), "model format 99 is not the supported 1"),
    "no data section": (edit_config(lambda c: c.pop("data")), "no 'data' section"),
    "bad pos_weight": (edit_config(lambda c: c["train"].update(pos_weight="ten")), "train.pos_weight must be"),
    "not json": (lambda folder: (folder / "config.json").write_text("{nope"), "config.json: unreadable"),
    "config a list": (lambda folder: (folder / "config.json").write_text("[1, 2]"), "expected a JSON object"),
    # 3.7 GB of network if it were built: refused from the weights file's header alone, in well under a second
    "huge claimed size": (edit_config(lambda c: c["model"].update(lstm_units=8192)), "weights do not load into this"),
    "weights a device": (replace_weights_with_a_link_to_dev_zero, "model.safetensors: not a regular file"),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_a_damaged_model_folder_gets_one_clear_message_and_exit_2(trained_runs, tmp_path, name):
    damage, message = DAMAGES[name]
    folder = damaged_copy(trained_runs["all"], tmp_path / "model", damage)
    result = subprocess.run(
        [CONSOLE, "generate", "--model", str(folder), "--out", str(tmp_path / "out"), "--length", "4", "--no-audio"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1  # one line
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


class Payload:
    """Unpickling this runs `touch` on a file: the proof that a pickle was executed."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (["touch", str(self.marker)],))


def test_resume_never_runs_code_hidden_in_a_checkpoint(trained_runs, tmp_path):
    folder = shutil.copytree(trained_runs["all"], tmp_path / "run")
    marker = tmp_path / "pwned"
    with open(folder / "checkpoints" / "last.ckpt", "wb") as file:
        pickle.dump({"state_dict": Payload(marker)}, file)
    result = subprocess.run(
        [CONSOLE, "train", "--out", str(folder), "--resume", "--epochs", "4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2 and not marker.exists()
    assert "last.ckpt" in result.stderr and "Traceback" not in result.stderr
