"""The network: the true parameter count, weight-drop, carried state, one-step generation through the cell."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from musiclstm.cli import main
from musiclstm.config import MODEL_PRESETS, ModelConfig, MusicLSTMError
from musiclstm.network.heads import DrawRules, IndependentHead, NadeHead, StrikeHead
from musiclstm.network.model import MusicLSTM, bf16_lstm_problem, cpu_autocast, keras_parameter_count, parameter_count
from musiclstm.network.reading import as_events, encode
from musiclstm.network.run import model_config_of

SMALL = MODEL_PRESETS["small"]
AS_ON_AN_AVX2_CPU = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX2"}  # oneDNN's instruction-set limit
ON_X86 = pytest.mark.skipif(
    platform.machine() not in ("x86_64", "AMD64"), reason="ONEDNN_MAX_CPU_ISA=AVX2 is an x86 limit"
)


def random_events(*shape: int, density: float = 0.1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Events (*shape, 176) float32 of a random roll: its keys sounding, and struck where they start to sound."""
    roll = torch.rand(*shape, 88, generator=generator) < density
    return torch.from_numpy(as_events(roll.numpy())).float()


def random_rows(*shape: int, config: ModelConfig = SMALL, **kwargs) -> torch.Tensor:
    """The rows a model of `config` reads for random events (*shape, 176) from position 0: (*shape, input width)."""
    return encode(random_events(*shape, **kwargs), 0, config.inputs)


def test_the_seed_preset_has_the_true_parameter_count_not_the_specifications():
    assert keras_parameter_count(MODEL_PRESETS["seed"]) == 3_483_992
    assert parameter_count(MusicLSTM(MODEL_PRESETS["seed"])) == 3_488_088  # + 2 x 4 x 512 second biases


def test_summary_command_prints_the_layer_table_and_both_counts(capsys):
    assert main(["summary", "--preset", "seed"]) == 0
    output = capsys.readouterr().out
    assert "3,488,088" in output and "Keras counts 3,483,992" in output and "6,451,624" in output


def test_forward_gives_features_after_the_last_step_or_every_step_and_the_head_logits():
    model = MusicLSTM(SMALL).eval()
    rolls = random_rows(3, 10)
    last, _ = model(rolls)
    every, _ = model(rolls, every_step=True)
    assert last.shape == (3, SMALL.dense_units) and every.shape == (3, 10, SMALL.dense_units)
    previous = rolls[:, -1, :88]  # the keys sounding at the last step read: the step before the one predicted
    assert model.head(model.head_input(last, previous)).shape == (3, 88)
    assert model.head_input(last, previous).shape == (3, SMALL.dense_units + 88)  # the head sees where voices were
    torch.testing.assert_close(every[:, -1], last)


def test_carrying_the_state_equals_reading_the_whole_sequence():
    model = MusicLSTM(SMALL).eval()
    rolls = random_rows(2, 12)
    whole, _ = model(rolls, every_step=True)
    first, state = model(rolls[:, :5], every_step=True)
    second, _ = model(rolls[:, 5:], state=state, every_step=True)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole)


def test_recurrent_dropout_drops_recurrent_weights_in_training_only():
    config = replace(SMALL, input_dropout=0.0, dense_dropout=0.0, recurrent_dropout=0.5)
    model = MusicLSTM(config)
    rolls = random_rows(2, 8, config=config, density=0.2)
    torch.manual_seed(0)
    assert not torch.equal(model(rolls)[0], model(rolls)[0])
    model.eval()
    assert torch.equal(model(rolls)[0], model(rolls)[0])
    assert sorted(model.state_dict())[:4] == ["dense.bias", "dense.weight", "head.bias", "head.weight"]
    assert "lstm1.weight_hh_l0" in model.state_dict()


def test_recurrent_dropout_lets_gradients_reach_the_recurrent_weights():
    model = MusicLSTM(SMALL).train()
    features, _ = model(random_rows(2, 8, density=0.2))
    model.head(model.head_input(features, torch.zeros(2, 88))).sum().backward()
    assert model.lstm1.weight_hh_l0.grad.abs().sum() > 0


def test_single_steps_in_eval_mode_match_the_sequence_kernel_and_training_keeps_dropout():
    model = MusicLSTM(SMALL).eval()
    rolls = random_rows(3, 12, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole, (state1, state2) = model(rolls, every_step=True)
        state, stepped = None, []
        for step in range(rolls.shape[1]):
            logits, state = model(rolls[:, step : step + 1], state)
            stepped.append(logits)
    torch.testing.assert_close(torch.stack(stepped, dim=1), whole, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(state[1][1], state2[1], atol=1e-5, rtol=1e-5)  # the cell state carries on too
    model.train()
    with torch.no_grad():
        twice = [model(rolls[:, :1])[0] for _ in range(2)]
    assert not torch.equal(*twice)  # a training step is still dropped out, not the eval-only fast path


def test_outside_training_one_lstm_call_reads_at_most_rows_per_call_and_chunks_change_nothing(monkeypatch):
    from musiclstm.judging.evaluation import score_piece
    from musiclstm.network import model as model_module

    torch.manual_seed(0)
    model = MusicLSTM(replace(MODEL_PRESETS["small"], lstm_units=8, dense_units=4, window=16)).eval()
    events = random_events(3, 50)
    rolls = encode(events, 0, model.config.inputs)  # (3, 50, 188)
    with torch.inference_mode():
        whole = model(rolls, every_step=True)[0], model(rolls)[0]
    calls = []
    lstm = torch.nn.LSTM.forward
    monkeypatch.setattr(
        torch.nn.LSTM,
        "forward",
        lambda self, inputs, state=None: calls.append(inputs.shape[:2]) or lstm(self, inputs, state),
    )
    monkeypatch.setattr(model_module, "ROWS_PER_CALL", 24)  # 8 steps at batch 3
    with torch.inference_mode():
        chunked = model(rolls, every_step=True)[0], model(rolls)[0]
        score_piece(model, events[0].bool().numpy(), "stateful")
    assert calls and max(batch * steps for batch, steps in calls) <= 24
    for expected, got in zip(whole, chunked, strict=True):
        torch.testing.assert_close(got, expected)
    model.train()
    calls.clear()
    model(rolls)
    assert calls == [(3, 50), (3, 50)]  # training reads its windows whole, one call per layer


def test_the_network_starts_as_the_specifications_keras_network_does():
    model = MusicLSTM(MODEL_PRESETS["small"])
    units = model.config.lstm_units
    for lstm in (model.lstm1, model.lstm2):
        recurrent = lstm.weight_hh_l0
        torch.testing.assert_close(recurrent.T @ recurrent, torch.eye(units), atol=1e-5, rtol=0)
        bias = (lstm.bias_ih_l0 + lstm.bias_hh_l0).view(4, units)
        assert bias[1].eq(1).all() and bias[[0, 2, 3]].eq(0).all()  # only the forget gate starts open
        limit = (6 / (lstm.input_size + 4 * units)) ** 0.5  # Glorot-uniform over (inputs, 4 units)
        assert lstm.weight_ih_l0.abs().max() <= limit and lstm.weight_ih_l0.abs().max() > 0.9 * limit
    assert model.dense.bias.eq(0).all() and model.head.bias.eq(0).all()


def test_new_models_get_the_nade_head_and_the_seed_preset_keeps_the_specifications_output(capsys):
    assert ModelConfig().head == "nade" and MODEL_PRESETS["nade"] == ModelConfig()
    assert ModelConfig().inputs == ("keys", "struck", "metre", "phrase") and ModelConfig().strikes is True
    assert ModelConfig().head_reads_previous is True
    seed_network = dict(head="independent", inputs=("keys",), strikes=False, head_reads_previous=False)
    seed_network.update(input_dropout=0.3, recurrent_dropout=0.2, dense_dropout=0.4)  # the specification's
    assert MODEL_PRESETS["seed"] == replace(ModelConfig(), **seed_network)
    new = MusicLSTM(ModelConfig())
    assert isinstance(new.head, NadeHead) and isinstance(new.strikes, StrikeHead)
    assert new.lstm1.input_size == 88 + 88 + 12 + 5 and new.head.key_bias.in_features == 256 + 88
    seed = MusicLSTM(MODEL_PRESETS["seed"])
    assert isinstance(seed.head, IndependentHead) and seed.strikes is None and seed.lstm1.input_size == 88
    assert main(["summary"]) == 0
    output = capsys.readouterr().out
    assert "head: NADE, high-to-low" in output and "strikes (Linear, features + keys)" in output


def test_the_bf16_probe_says_whether_the_network_trains_under_bf16_autocast_on_this_cpu():
    model = MusicLSTM(SMALL).train()
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features, _ = model(random_rows(2, 8, density=0.2))  # (2, 32) after 8 steps of 193 columns
            logits = model.head(model.head_input(features, torch.zeros(2, 88)))
        logits.float().sum().backward()
    except RuntimeError as err:
        assert bf16_lstm_problem() == str(err).splitlines()[0]
        with pytest.raises(MusicLSTMError, match="this CPU has no bf16 LSTM in oneDNN"):
            cpu_autocast("bf16-mixed")
    else:
        assert bf16_lstm_problem() is None and cpu_autocast("bf16-mixed").fast_dtype == torch.bfloat16
    with cpu_autocast("32"):
        assert not torch.is_autocast_enabled("cpu")


@ON_X86
def test_without_avx512_the_bf16_probe_gives_onednns_refusal_of_the_lstm():
    said = subprocess.run(
        [sys.executable, "-c", "from musiclstm.network.model import bf16_lstm_problem; print(bf16_lstm_problem())"],
        capture_output=True,
        text=True,
        env=AS_ON_AN_AVX2_CPU,
    )
    assert said.stdout.startswith("could not create a primitive descriptor for the LSTM forward propagation primitive")


@ON_X86
def test_bf16_generation_on_a_cpu_without_a_bf16_lstm_is_refused_in_one_line_before_composing(tmp_path):
    console = str(Path(sys.executable).with_name("musiclstm"))
    out = tmp_path / "pieces"
    done = subprocess.run(
        [console, "generate", "--precision", "bf16-mixed", "--length", "4", "--no-audio", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env=AS_ON_AN_AVX2_CPU,
    )
    assert (done.returncode, done.stderr) == (
        2,
        "musiclstm: error: --precision bf16-mixed: this CPU has no bf16 LSTM in oneDNN (AVX2 only); "
        "use --precision 32\n",
    )
    assert not out.exists()


def test_the_first_lstm_reads_as_many_columns_as_the_configs_inputs(monkeypatch):
    from musiclstm.config import BUNDLED_MODEL
    from musiclstm.network import reading
    from musiclstm.network.run import load_model

    bundled = load_model(BUNDLED_MODEL)  # the default network: keys sounding and struck, the metre, phrase ends
    assert bundled.config.inputs == ("keys", "struck", "metre", "phrase") and bundled.lstm1.input_size == 88 * 2 + 17
    assert bundled.strikes is not None
    beat = reading.InputFeature(4, lambda events, positions, grids: events[..., :4])
    monkeypatch.setitem(reading.INPUT_FEATURES, "beat", beat)
    keys_only = replace(SMALL, inputs=("keys",))
    config = replace(SMALL, inputs=("keys", "beat"))
    assert MusicLSTM(keys_only).lstm1.input_size == 88 and MusicLSTM(config).lstm1.input_size == 92
    assert MusicLSTM(SMALL).lstm1.input_size == 88 + 88 + 12 + 5
    assert keras_parameter_count(config) - keras_parameter_count(keys_only) == 4 * SMALL.lstm_units * 4


@pytest.mark.parametrize("strikes", [True, False])
def test_a_drawn_step_strikes_every_key_that_starts_to_sound_and_a_held_key_again_only_with_a_strike_head(strikes):
    model = MusicLSTM(replace(SMALL, strikes=strikes)).eval()
    with torch.no_grad():
        model.head.bias.fill_(-20.0)
        model.head.bias[[39, 43]] = 20.0  # C4 and E4 always sound
        if strikes:
            model.strikes.from_features.bias.fill_(20.0)  # every held-over key struck again
    previous = torch.zeros(2, 88, dtype=torch.bool)
    previous[0, 39] = True  # row 0: C4 sounded the step before; row 1: nothing did
    with torch.no_grad():
        events = model.draw(torch.zeros(2, SMALL.dense_units), previous, DrawRules(choose="threshold"))
    assert events.shape == (2, 176) and events.dtype == torch.bool
    assert [row[:88].nonzero().flatten().tolist() for row in events] == [[39, 43], [39, 43]]
    struck = [row[88:].nonzero().flatten().tolist() for row in events]
    assert struck == ([[39, 43], [39, 43]] if strikes else [[43], [39, 43]])


def test_the_head_reads_where_each_voice_was_and_folders_made_before_that_read_the_features_alone():
    torch.manual_seed(0)
    model = MusicLSTM(replace(SMALL, head="nade", nade_units=16)).eval()
    features = torch.randn(2, SMALL.dense_units)
    keys = torch.zeros(2, 88)
    keys[:, [40, 44, 47, 52]] = 1.0  # an E major chord
    held, moved = keys.clone(), torch.roll(keys, 2, dims=1)  # the step before: the same chord, or one a tone up
    struck = torch.zeros(2, 88)
    nll_held = model.frame_nll(features, torch.cat([keys, struck, held], dim=-1))
    nll_moved = model.frame_nll(features, torch.cat([keys, struck, moved], dim=-1))
    assert not torch.allclose(nll_held, nll_moved)  # the same step, scored after a different step before
    head_alone = model.head.frame_nll(torch.cat([features, held], dim=-1), keys)
    assert torch.equal(nll_held, head_alone)  # the sounding keys' likelihood is the NADE head's, exact
    older = model_config_of({"model": {"head": "nade", "inputs": ["keys", "struck", "metre"], "strikes": True}})
    assert older.head_reads_previous is False and MusicLSTM(older).head.key_bias.in_features == older.dense_units
