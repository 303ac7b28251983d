"""The seed's network in plain PyTorch: LSTM -> LSTM -> Dense ReLU -> Dropout, then an output head.

`MusicLSTM` reads encoded steps (batch, steps, input_width), the rows `reading.encode` makes of a
piece's events (its keys sounding and struck, its metre, as the config names), and gives, after each
step, features (batch, steps, dense_units) from which its heads (`heads`) predict the next step:
the sound head the keys sounding, the strike head (where the config has one) which held keys are
struck again. `loss`, `frame_nll`, `event_nll` and `draw` put the two together for training,
scoring and composing. With the specification's `IndependentHead`, the
whole is LSTM 512 -> LSTM 512 -> Dense 256 ReLU -> Dropout 0.4 -> Dense 88. Its folder on disk is
`run`'s business; nothing here imports Lightning or reads a file. `check_bf16_lstm` says, before any
work, whether this CPU can run the network under bf16 autocast at all.
"""

from __future__ import annotations

import functools
import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from musiclstm.config import N_KEYS, ModelConfig, MusicLSTMError
from musiclstm.network.heads import DrawRules, StrikeHead, make_head
from musiclstm.network.reading import input_width

log = logging.getLogger(__name__)

LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each (1, batch, units)
ROWS_PER_CALL = 8192  # batch x steps per LSTM call outside training; see MusicLSTM.chunks


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


@torch.no_grad()
def keras_initialisation(module: nn.Module) -> None:
    """Start a layer as the specification's Keras network does, not as PyTorch does.

    Keras's LSTM: Glorot-uniform input weights, orthogonal recurrent weights, zero biases but
    1 on the forget gate (`unit_forget_bias`); its Dense: Glorot-uniform weights, zero bias. PyTorch's
    uniform(+-1/sqrt(units)) start left the seed preset on the plateau of each key's frequency for
    the first minutes of training (docs: benchmarks).
    """
    if isinstance(module, nn.LSTM):
        units = module.hidden_size
        nn.init.xavier_uniform_(module.weight_ih_l0)  # (4 units, inputs): Keras's (inputs, 4 units) transposed
        nn.init.orthogonal_(module.weight_hh_l0)  # (4 units, units), orthonormal columns, as Keras's transposed
        module.bias_ih_l0.zero_()
        module.bias_hh_l0.zero_()
        module.bias_ih_l0[units : 2 * units] = 1.0  # PyTorch's gate order: input, forget, cell, output
    elif isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


@functools.cache
def bf16_lstm_problem() -> str | None:
    """Why an LSTM cannot run under bf16 autocast on this CPU (oneDNN's first line), or None when it can.

    oneDNN has a bf16 LSTM only on CPUs with AVX-512; on an AVX2-only CPU (or under
    ONEDNN_MAX_CPU_ISA=AVX2) it refuses the primitive at the first batch. One step of a 1-unit LSTM,
    forward and backward, asks it once per process.
    """
    with torch.inference_mode(False), torch.enable_grad():  # generation asks from inside inference mode
        lstm = nn.LSTM(1, 1, batch_first=True)
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                output, _ = lstm(torch.zeros(1, 1, 1))
            output.float().sum().backward()
        except RuntimeError as err:
            return str(err).splitlines()[0]
    return None


def check_bf16_lstm() -> None:
    """Refuse bf16 autocast on a CPU whose oneDNN has no bf16 LSTM, before any work.

    Raises:
        MusicLSTMError: this CPU cannot run the LSTM in bf16; the message says to use --precision 32.
    """
    problem = bf16_lstm_problem()
    if problem is not None:
        log.debug("oneDNN's bf16 LSTM: %s", problem)
        raise MusicLSTMError(
            "--precision bf16-mixed: this CPU has no bf16 LSTM in oneDNN (AVX2 only); use --precision 32"
        )


def cpu_autocast(precision: str) -> torch.autocast:
    """The CPU autocast of a precision ('32': off, 'bf16-mixed': bf16), refused first where bf16 LSTMs fail."""
    if precision == "bf16-mixed":
        check_bf16_lstm()
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed")


class MusicLSTM(nn.Module):
    """Two LSTM layers and a dense layer give features after each step; `head` predicts the next step from them.

    `pos_weight` is the loss weight the model was (or will be) trained with; the head undoes it when
    scoring and composing (see `heads.IndependentHead`). `initialise` False leaves PyTorch's own start in
    place of Keras's, for a model whose weights are loaded next.
    """

    def __init__(self, config: ModelConfig, pos_weight: float = 1.0, initialise: bool = True):
        super().__init__()
        self.config = config
        self.lstm1 = nn.LSTM(input_width(config), config.lstm_units, batch_first=True)
        self.lstm2 = nn.LSTM(config.lstm_units, config.lstm_units, batch_first=True)
        self.dense = nn.Linear(config.lstm_units, config.dense_units)
        self.head = make_head(config, pos_weight)
        if initialise:  # a model about to load its weights skips it: the orthogonal start alone takes a second
            self.apply(keras_initialisation)
        self.strikes = StrikeHead(config.dense_units) if config.strikes else None  # its own start, not Keras's

    def head_input(self, features: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """What the sound head reads: the features (..., dense_units), and where the config says so the keys
        sounding the step before (..., 88) after them."""
        if not self.config.head_reads_previous:
            return features
        return torch.cat([features, previous.to(features.dtype)], dim=-1)

    def loss(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss of step targets (..., 264) (`reading.step_targets`): the sound head's, plus the
        strike head's where there is one (both per key decision, so they add)."""
        keys, struck, previous = split_targets(targets)
        loss = self.head.loss(self.head_input(features, previous), keys)
        return loss if self.strikes is None else loss + self.strikes.loss(features, keys, struck, previous)

    def frame_nll(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """-log p(the keys sounding) per step, (...) float64: the literature's frame NLL."""
        keys, _, previous = split_targets(targets)
        return self.head.frame_nll(self.head_input(features, previous), keys)

    def key_nll(self, features: torch.Tensor, keys: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """-log p(each key as `keys` (..., 88) has it | the keys the head decides before it, the past), (..., 88)."""
        return self.head.key_nll(self.head_input(features, previous), keys)

    def decisions(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The sound head's likelier value of each key given the true keys decided before it, bool (..., 88)."""
        keys, _, previous = split_targets(targets)
        return self.head.decisions(self.head_input(features, previous), keys)

    def predicted_frames(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The frame the sound head predicts of each step after the true step before, bool (..., 88)."""
        return self.head.predicted_frames(self.head_input(features, split_targets(targets)[2]))

    def event_nll(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None:
        """-log p(the keys sounding and the keys struck) per step, (...) float64; None without a strike head."""
        if self.strikes is None:
            return None
        keys, struck, previous = split_targets(targets)
        return self.frame_nll(features, targets) + self.strikes.strike_nll(features, keys, struck, previous)

    def draw(
        self,
        features: torch.Tensor,
        previous: torch.Tensor,
        rules: DrawRules,
        generator: torch.Generator | None = None,
        struck: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Draw one step's events (batch, 176) bool after the keys sounding before it, `previous` (batch, 88):
        the sound head draws the keys, the strike head which held keys are struck again (without one,
        none: a held key goes on). `struck` decides the forced keys' strikes (see `StrikeHead.draw`)."""
        keys = self.head.draw(self.head_input(features, previous), rules, generator, previous)
        if self.strikes is None:
            strikes = keys & ~previous
            if struck is not None and rules.forced is not None:
                strikes |= keys & rules.forced & struck
        else:
            strikes = self.strikes.draw(features, keys, previous, rules, generator, struck)
        return torch.cat([keys, strikes], dim=-1)

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
        """Read rolls and give the features that predict the next step.

        Args:
            rolls: (batch, steps, 88), 1.0 where a key sounds.
            state: the LSTM states to start from (None: zeros), as returned by a previous call.
            every_step: features after every input step (batch, steps, dense_units); else after the last
                (batch, dense_units).

        Returns:
            The features and the LSTM states after the last step.
        """
        every_steps_features = []
        for chunk in self.chunks(rolls):
            hidden, state = self.recur(chunk, state)
            if every_step:
                every_steps_features.append(self.features(hidden))
        return (torch.cat(every_steps_features, dim=1) if every_step else self.features(hidden[:, -1])), state

    def chunks(self, rolls: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Rolls (batch, steps, 88) cut along time into the pieces one LSTM call reads, to be read in turn.

        Outside training a call reads at most ROWS_PER_CALL batch rows x steps, so a long piece or primer
        costs memory by the chunk, not by its length, and never meets oneDNN's LSTM kernel, which fails
        past about 262,000 steps in one call. Training reads its windows whole.
        """
        steps = rolls.shape[1] if self.training else ROWS_PER_CALL // len(rolls)
        return rolls.split(max(1, steps), dim=1)

    def recur(
        self, rolls: torch.Tensor, state: tuple[LSTMState, LSTMState] | None = None
    ) -> tuple[torch.Tensor, tuple[LSTMState, LSTMState]]:
        """The two LSTM layers: the top layer's output at every step (batch, steps, units), and the states."""
        hidden1, state1 = self.run_lstm(self.lstm1, rolls, state[0] if state else None)
        hidden2, state2 = self.run_lstm(self.lstm2, hidden1, state[1] if state else None)
        return hidden2, (state1, state2)

    def features(self, hidden: torch.Tensor) -> torch.Tensor:
        """The dense ReLU layer and its dropout: the top LSTM layer's output (..., units) to (..., dense_units)."""
        return F.dropout(F.relu(self.dense(hidden)), self.config.dense_dropout, self.training)


def split_targets(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Step targets (..., 264) as the keys sounding, the keys struck, and the keys sounding the step before."""
    return targets[..., :N_KEYS], targets[..., N_KEYS : 2 * N_KEYS], targets[..., 2 * N_KEYS :]


def keras_parameter_count(config: ModelConfig) -> int:
    """Parameters of the same network in Keras, which has one bias per LSTM gate where PyTorch has two."""
    units, dense = config.lstm_units, config.dense_units
    lstm1 = 4 * (units * (input_width(config) + units) + units)
    lstm2 = 4 * (units * (units + units) + units)
    strikes = (dense * N_KEYS + N_KEYS) + N_KEYS * N_KEYS if config.strikes else 0  # two Dense layers in Keras
    return lstm1 + lstm2 + (units * dense + dense) + (dense * N_KEYS + N_KEYS) + strikes


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
        *model.head.layer_rows(),
        *(model.strikes.layer_rows() if model.strikes is not None else []),
        ("total", "", parameter_count(model)),
    ]


def format_network(config: ModelConfig) -> str:
    """The layer table and true parameter count of a network, with how it compares to Keras's count."""
    lines = [f"{'layer':<30} {'output shape':<18} {'parameters':>12}"]
    lines += [f"{layer:<30} {shape:<18} {count:>12,}" for layer, shape, count in summary_rows(config)]
    if config.head != "independent":
        lines.append(
            "\nThe NADE head follows RNN-NADE (Boulanger-Lewandowski 2012); the specification has no Keras twin."
        )
        return "\n".join(lines)
    lines.append(
        f"\nKeras counts {keras_parameter_count(config):,} for this network: PyTorch's LSTM keeps two bias vectors "
        "per layer (input and recurrent) where Keras keeps one, 4 x units more per layer.\n"
        "The specification's table (6,451,624) does not match its own architecture."
    )
    return "\n".join(lines)
