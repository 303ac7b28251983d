"""The seed's network in plain PyTorch, and its folder on disk.

MusicLSTM maps rolls (batch, steps, 88) to logits over the 88 keys for the step after each input
step: LSTM -> LSTM -> Dense ReLU -> Dropout -> Dense 88. It returns logits, not probabilities:
the loss and the samplers apply the sigmoid themselves, which is stable where the seed's
sigmoid-then-log is not. A model folder is `config.json` (architecture, data resolution, training
settings, versions) plus `model.safetensors`; loading it never unpickles anything.
Nothing here imports Lightning.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn
from torch.func import functional_call

from musiclstm.config import (
    CONTEXTS,
    MAX_STEPS_PER_BEAT,
    MODEL_FORMAT_VERSION,
    N_KEYS,
    ModelConfig,
    MusicLSTMError,
)
from musiclstm.files import read_json_object, write_bytes_atomically

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, batch, units)


def time_shared_dropout(inputs: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Drop input features with one mask per sequence, the same at every step (as Keras's LSTM `dropout`)."""
    if not training or p == 0:
        return inputs
    keep = torch.empty_like(inputs[:, :1]).bernoulli_(1 - p)  # (batch, 1, features)
    return inputs * keep / (1 - p)


def one_lstm_step(lstm: nn.LSTM, inputs: torch.Tensor, state: LSTMState | None):
    """One step of `lstm` on inputs (batch, 1, features), as nn.LSTM computes it, through the fused cell.

    Generating steps one at a time, nn.LSTM's sequence kernel spends about 2 ms a call setting up
    (measured at batch 1: 2.4 ms a step against 0.2 ms for the cell), which made it the whole cost.
    """
    if state is None:
        zeros = inputs.new_zeros(1, len(inputs), lstm.hidden_size)
        state = (zeros, zeros)
    hidden, cell = torch.lstm_cell(
        inputs[:, 0], (state[0][0], state[1][0]), lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0
    )
    return hidden[:, None], (hidden[None], cell[None])


class MusicLSTM(nn.Module):
    """Two LSTM layers and a dense head; logits for the step after each input step."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.lstm1 = nn.LSTM(N_KEYS, config.lstm_units, batch_first=True)
        self.lstm2 = nn.LSTM(config.lstm_units, config.lstm_units, batch_first=True)
        self.dense = nn.Linear(config.lstm_units, config.dense_units)
        self.head = nn.Linear(config.dense_units, N_KEYS)

    def run_lstm(self, lstm: nn.LSTM, inputs: torch.Tensor, state: LSTMState | None):
        if not self.training and inputs.shape[1] == 1:
            return one_lstm_step(lstm, inputs, state)
        inputs = time_shared_dropout(inputs, self.config.input_dropout, self.training)
        if self.training and self.config.recurrent_dropout > 0:
            # DropConnect on the recurrent weights, one mask per batch: the fused kernel still runs
            dropped = F.dropout(lstm.weight_hh_l0, self.config.recurrent_dropout, training=True)
            return functional_call(lstm, {"weight_hh_l0": dropped}, (inputs, state))
        return lstm(inputs, state)

    def forward(
        self, rolls: torch.Tensor, state: tuple[LSTMState, LSTMState] | None = None, every_step: bool = False
    ) -> tuple[torch.Tensor, tuple[LSTMState, LSTMState]]:
        """Predict the next step.

        Args:
            rolls: (batch, steps, 88), 1.0 where a key sounds.
            state: the LSTM states to start from (None: zeros), as returned by a previous call.
            every_step: logits after every input step (batch, steps, 88); else after the last (batch, 88).

        Returns:
            The logits and the LSTM states after the last step.
        """
        hidden, state = self.recur(rolls, state)
        return self.readout(hidden if every_step else hidden[:, -1]), state

    def recur(
        self, rolls: torch.Tensor, state: tuple[LSTMState, LSTMState] | None = None
    ) -> tuple[torch.Tensor, tuple[LSTMState, LSTMState]]:
        """The two LSTM layers: the top layer's output at every step (batch, steps, units), and the states."""
        hidden1, state1 = self.run_lstm(self.lstm1, rolls, state[0] if state else None)
        hidden2, state2 = self.run_lstm(self.lstm2, hidden1, state[1] if state else None)
        return hidden2, (state1, state2)

    def readout(self, hidden: torch.Tensor) -> torch.Tensor:
        """The dense head: the top LSTM layer's output (..., units) to logits (..., 88)."""
        return self.head(F.dropout(F.relu(self.dense(hidden)), self.config.dense_dropout, self.training))


def keras_parameter_count(config: ModelConfig) -> int:
    """Parameters of the same network in Keras, which has one bias per LSTM gate where PyTorch has two."""
    units, dense = config.lstm_units, config.dense_units
    lstm1 = 4 * (units * (N_KEYS + units) + units)
    lstm2 = 4 * (units * (units + units) + units)
    return lstm1 + lstm2 + (units * dense + dense) + (dense * N_KEYS + N_KEYS)


def parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def summary_rows(config: ModelConfig) -> list[tuple[str, str, int]]:
    """The layer table: (layer, output shape, PyTorch parameters), with the whole model last."""
    model = MusicLSTM(config)
    units, window = config.lstm_units, config.window
    return [
        ("lstm1 (LSTM)", f"(batch, {window}, {units})", parameter_count(model.lstm1)),
        ("lstm2 (LSTM)", f"(batch, {units})", parameter_count(model.lstm2)),
        ("dense (Linear, ReLU)", f"(batch, {config.dense_units})", parameter_count(model.dense)),
        (f"dropout ({config.dense_dropout})", f"(batch, {config.dense_units})", 0),
        ("head (Linear, logits)", f"(batch, {N_KEYS})", parameter_count(model.head)),
        ("total", "", parameter_count(model)),
    ]


def save_weights(model: MusicLSTM, run_dir: Path) -> None:
    """Write the model's weights as safetensors, atomically."""
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    write_bytes_atomically(Path(run_dir) / WEIGHTS_FILE, save(tensors))


def read_run_config(run_dir: str | Path) -> dict:
    """Read a model folder's config.json, checking its format version."""
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


def load_model(run_dir: str | Path) -> MusicLSTM:
    """Rebuild a model from its folder, in eval mode, on the CPU.

    Raises:
        MusicLSTMError: the folder, its config or its weights are missing, damaged or do not match.
    """
    run_dir = Path(run_dir)
    settings = read_run_config(run_dir)
    try:
        model = MusicLSTM(ModelConfig(**settings["model"]))
    except (TypeError, MusicLSTMError) as err:
        raise MusicLSTMError(f"{run_dir / CONFIG_FILE}: bad 'model' section ({err})") from err
    weights_path = run_dir / WEIGHTS_FILE
    if not weights_path.is_file():
        raise MusicLSTMError(f"{run_dir}: no {WEIGHTS_FILE}; has training saved a best epoch yet?")
    try:
        weights = load_file(weights_path)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise MusicLSTMError(f"{weights_path}: weights do not load ({err})") from err
    mismatch = weights_mismatch(model, weights)
    if mismatch:
        raise MusicLSTMError(f"{weights_path}: weights do not load into this model ({mismatch})")
    model.load_state_dict(weights)
    return model.eval()


def weights_mismatch(model: nn.Module, weights: dict[str, torch.Tensor]) -> str | None:
    """The first way `weights` differ from the model's own tensors (name or shape), or None."""
    expected = model.state_dict()
    unmatched = sorted(expected.keys() ^ weights.keys())
    if unmatched:
        return f"{unmatched[0]} is {'missing' if unmatched[0] in expected else 'not part of the model'}"
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            return f"{name} has shape {tuple(weights[name].shape)}, config.json makes it {tuple(tensor.shape)}"
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
