"""The NADE head: a true distribution over frames, drawn key by key under the rules, trained and used end to end."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import pytest
import torch

from musiclstm import TrainConfig, midi_to_roll, train
from musiclstm.cli import main
from musiclstm.config import MODEL_PRESETS
from musiclstm.judging.evaluation import evaluate_model
from musiclstm.network.heads import DrawRules, NadeHead
from musiclstm.network.model import bf16_lstm_problem
from musiclstm.network.run import load_model, read_history
from musiclstm.network.sampling import scale_mask

SMALL_NADE = replace(MODEL_PRESETS["small"], head="nade", nade_units=16)


def four_key_head(order: str) -> tuple[NadeHead, torch.Tensor]:
    """A NADE head over 4 keys (a test-only size, so all 16 frames can be listed) and 3 feature rows."""
    torch.manual_seed(0)
    head = NadeHead(5, 7, order, keys=4)
    with torch.no_grad():
        head.key_bias.bias.normal_()
        head.key_to_hidden.mul_(3)  # keys that matter to each other
    return head, torch.randn(3, 5)


ALL_FRAMES = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)))  # (16, 4)


def test_the_key_nll_of_the_keys_decided_first_is_their_exact_marginal_a_melody_and_the_silence_above_it():
    head, features = four_key_head("high-to-low")  # keys 3, 2, 1, 0 in that order
    with torch.no_grad():
        joint = torch.exp(-head.frame_nll(features[:, None].expand(3, 16, 5), ALL_FRAMES.expand(3, 16, 4)))
        melody = (ALL_FRAMES[:, 3] == 0) & (ALL_FRAMES[:, 2] == 1)  # the melody on key 2, key 3 silent above it
        for lower in ALL_FRAMES[melody]:  # whatever the keys below, the first two conditionals are the same
            key_nll = head.key_nll(features, lower.expand(3, 4))
            marginal = torch.exp(-key_nll[:, 2:].sum(-1))
            assert marginal.numpy() == pytest.approx(joint[:, melody].sum(1).numpy(), abs=1e-6)
        assert head.key_nll(features, ALL_FRAMES[5].expand(3, 4)).sum(-1).numpy() == pytest.approx(
            -torch.log(joint[:, 5]).numpy(), abs=1e-5
        )


@pytest.mark.parametrize("order", ["high-to-low", "low-to-high"])
def test_the_conditionals_of_a_frame_multiply_to_a_distribution_over_all_frames(order):
    head, features = four_key_head(order)
    with torch.no_grad():
        nll = head.frame_nll(features[:, None].expand(3, 16, 5), ALL_FRAMES.expand(3, 16, 4))
    assert torch.exp(-nll).sum(dim=1).numpy() == pytest.approx([1.0, 1.0, 1.0], abs=1e-6)  # float32 logits
    assert nll.min() > 0


def test_drawing_key_by_key_gives_each_frame_the_probability_the_one_pass_nll_gives_it():
    head, features = four_key_head("high-to-low")
    draws = 40_000
    with torch.no_grad():
        nll = head.frame_nll(features[:1].expand(16, 5), ALL_FRAMES)
        drawn = head.draw(features[:1].expand(draws, 5), DrawRules(choose="sample"), torch.Generator().manual_seed(1))
    index = (drawn.long() * torch.tensor([8, 4, 2, 1])).sum(dim=1)
    frequencies = torch.bincount(index, minlength=16).double() / draws
    assert frequencies.numpy() == pytest.approx(torch.exp(-nll).numpy(), abs=0.01)  # 4 standard errors at most


def test_a_drawn_frame_is_scored_as_the_one_pass_nll_scores_it_and_the_proposal_leaves_out_masked_keys():
    head, features = four_key_head("high-to-low")
    rows = features[:1].expand(64, 5)
    allowed = torch.tensor([True, False, True, True]).expand(64, 4)
    with torch.no_grad():
        drawn = head.draw_scored(rows, DrawRules(choose="sample"), torch.Generator().manual_seed(2))
        frames, log_p, log_proposal = drawn
        assert log_p.numpy() == pytest.approx(-head.frame_nll(rows, frames.float()).numpy(), abs=1e-5)
        assert torch.equal(log_p, log_proposal)  # every key left to chance
        rules = DrawRules(choose="sample", allowed=allowed)
        frames, log_p, log_proposal = head.draw_scored(rows, rules, torch.Generator().manual_seed(2))
        key_nll = head.key_nll(rows, frames.float())
    assert not frames[:, 1].any()
    assert log_proposal.numpy() == pytest.approx(-(key_nll * allowed).sum(-1).numpy(), abs=1e-5)


@pytest.mark.parametrize("temperature", [0.5, 2.0])
def test_whole_step_temperature_draws_each_frame_by_p_to_the_power_1_over_t_under_the_key_mask(temperature):
    head, features = four_key_head("high-to-low")
    draws, allowed = 20_000, torch.tensor([True, True, False, True])
    rules = DrawRules(temperature, allowed.expand(draws, 4), choose="sample", candidates=64)
    with torch.no_grad():
        log_p = -head.frame_nll(features[:1].expand(16, 5), ALL_FRAMES).double()
        drawn = head.draw(features[:1].expand(draws, 5), rules, torch.Generator().manual_seed(3))
    in_key = ALL_FRAMES[:, 2] == 0
    target = torch.softmax(torch.where(in_key, log_p / temperature, -math.inf), 0)
    index = (drawn.long() * torch.tensor([8, 4, 2, 1])).sum(dim=1)
    frequencies = torch.bincount(index, minlength=16).double() / draws
    assert frequencies.numpy() == pytest.approx(target.numpy(), abs=0.015)
    tempered_keys = torch.softmax(torch.where(in_key, log_p, -math.inf), 0)  # temperature 1, for contrast
    assert (target - tempered_keys).abs().max() > 0.05  # the test tells a tempered draw from an untempered one


def test_the_keys_decided_first_change_the_chances_of_the_later_ones():
    head, features = four_key_head("high-to-low")
    top_on, top_off = ALL_FRAMES[[1]].clone(), ALL_FRAMES[[1]].clone()
    top_on[0, 3], top_off[0, 3] = 1.0, 0.0  # key 3 is decided first in high-to-low order
    with torch.no_grad():
        logits_on = head.ordered_logits(features[:1], top_on)
        logits_off = head.ordered_logits(features[:1], top_off)
    assert logits_on[0, 0] == logits_off[0, 0]  # the first key sees nothing before it
    assert not torch.allclose(logits_on[0, 1:], logits_off[0, 1:])


def test_greedy_draw_forced_keys_the_key_mask_and_the_note_cap_are_honoured():
    torch.manual_seed(0)
    head = NadeHead(4, 12)
    with torch.no_grad():
        head.key_bias.bias.fill_(2.0)  # every key likely on its own
    features = torch.randn(6, 4)
    allowed = scale_mask("D", "major")[None].expand(6, 88)
    forced = torch.zeros(6, 88, dtype=torch.bool)
    forced[:, 41] = True  # D4, in the key
    forced[:, 40] = True  # C#4, in D major too
    with torch.no_grad():
        greedy = head.predicted_frames(features)
        free = head.draw(features, DrawRules(allowed=allowed))
        capped = head.draw(features, DrawRules(allowed=allowed, forced=forced, max_notes=3))
        sampled = head.draw(features, DrawRules(allowed=allowed, choose="sample"), torch.Generator().manual_seed(0))
    assert torch.equal(greedy, head.draw(features, DrawRules(top_k=0)))
    # the greedy frame is the one each of whose keys is the likelier given the keys decided before it
    assert torch.equal(head.decisions(features, greedy.float()), greedy) and (greedy.sum(dim=1) > 0).all()
    for frames in (free, capped, sampled):
        assert not (frames & ~allowed).any()
    assert capped[:, [40, 41]].all() and (capped & ~forced).sum(dim=1).tolist() == [3] * 6  # the cap: chosen keys


def test_a_nade_model_trains_on_real_chorales_and_its_loss_falls(bach_corpus, tmp_path):
    result = train(bach_corpus.path, tmp_path / "run", SMALL_NADE, TrainConfig(epochs=4, lr=3e-3))
    history = read_history(tmp_path / "run")
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["val_nll"] < history[0]["val_nll"]
    model = load_model(tmp_path / "run")
    assert isinstance(model.head, NadeHead) and model.config == SMALL_NADE
    for context in ("stateful", "window"):
        report = evaluate_model(model, bach_corpus, "valid", context)
        assert report["head"] == "nade" and 0 <= report["frame_accuracy"] <= 1
        # scoring the valid split reads as validation did (the model's own context, stateful, within float error);
        # the window context sees less of each piece's past but, on pieces this short, nearly the same
        assert report["nll"] == pytest.approx(result["best_val_nll"], abs=1e-2 if context == "stateful" else 0.1)


@pytest.mark.parametrize(
    "settings",
    [
        dict(objective="last"),
        dict(objective="stateful", chunk=16),
        pytest.param(
            dict(precision="bf16-mixed"),
            marks=pytest.mark.skipif(
                bf16_lstm_problem() is not None, reason=f"this CPU has no bf16 LSTM in oneDNN: {bf16_lstm_problem()}"
            ),
        ),
    ],
)
def test_a_nade_model_trains_with_every_objective_and_in_bf16(bach_corpus, tmp_path, settings):
    train(bach_corpus.path, tmp_path / "run", SMALL_NADE, TrainConfig(epochs=2, **settings))
    history = read_history(tmp_path / "run")
    assert all(math.isfinite(row["val_nll"]) for row in history) and history[-1]["loss"] < history[0]["loss"]


def test_a_nade_model_trains_resumes_evaluates_and_composes_through_the_cli(bach_corpus, tmp_path, capsys):
    def musiclstm(*args):
        capsys.readouterr()
        assert main([str(arg) for arg in args]) == 0
        return capsys.readouterr().out

    run = tmp_path / "run"
    small = ["--preset", "small", "--head", "nade", "--nade-units", "16", "--key-order", "low-to-high"]
    musiclstm("train", "--data", str(bach_corpus.path), "--out", str(run), *small, "--epochs", "1", "--chunk", "32")
    musiclstm("train", "--out", str(run), "--resume", "--epochs", "2")
    assert [row["epoch"] for row in read_history(run)] == [0, 1]
    assert json.loads((run / "config.json").read_text())["model"]["key_order"] == "low-to-high"
    musiclstm("evaluate", "--model", str(run), "--data", str(bach_corpus.path), "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert 0 < report["nll"] < report["baselines"]["marginal"]["nll"] * 1.5
    out = tmp_path / "pieces"
    musiclstm(
        "generate",
        "--model",
        str(run),
        "--out",
        str(out),
        "--length",
        "32",
        "--num-outputs",
        "2",
        "--key",
        "G",
        "--scale",
        "major",
        "--no-audio",
        "--choose",
        "sample",
    )
    in_g_major = scale_mask("G", "major")
    for name in ("piece_1.mid", "piece_2.mid"):
        record = json.loads((out / name).with_suffix(".json").read_text())
        roll = midi_to_roll(out / name, 4).roll[record["primer_steps"] :]
        assert len(roll) == 32 and roll.any() and not (roll & ~in_g_major.numpy()).any()
    summary = musiclstm("summary", *small)
    assert "NADE, low-to-high" in summary


def key_by_key(head: NadeHead, features: torch.Tensor, rules: DrawRules, uniform: torch.Tensor | None) -> torch.Tensor:
    """The plain reading of the draw: one key at a time, in order, each seeing the keys before it."""
    hidden_in, sounding = head.hidden_bias(features), torch.zeros(len(features), 88, dtype=torch.bool)
    for i, key in enumerate(head.order.tolist()):
        logit = (head.key_bias(features)[:, i] + torch.sigmoid(hidden_in) @ head.hidden_to_key[i]) / rules.temperature
        on = uniform[:, i] < torch.sigmoid(logit) if uniform is not None else torch.sigmoid(logit) > rules.threshold
        on &= rules.allowed[:, key] & (sounding.sum(dim=1) < rules.max_notes)
        on |= rules.forced[:, key]
        sounding[:, key] = on
        hidden_in = hidden_in + on[:, None] * head.key_to_hidden[i]
    return sounding


def keyed_head(seed: int) -> NadeHead:
    """An 88-key head whose keys sound a few at a time and change each other's chances a lot."""
    torch.manual_seed(seed)
    head = NadeHead(6, 20)
    with torch.no_grad():
        head.key_bias.bias.normal_(-1.5, 2.0)
        head.key_to_hidden.mul_(4)
    return head


@pytest.mark.parametrize("choose", ["threshold", "sample"])
def test_the_draw_decides_each_key_as_deciding_them_one_by_one_does(choose):
    head = keyed_head(seed=3)
    features = torch.randn(64, 6)
    forced = torch.rand(64, 88) < 0.02
    rules = DrawRules(
        temperature=0.8, allowed=torch.rand(64, 88) < 0.7, forced=forced, choose=choose, threshold=0.4, max_notes=6
    )
    with torch.no_grad():
        drawn = head.draw(features, rules, torch.Generator().manual_seed(5))
        uniform = torch.rand(64, 88, generator=torch.Generator().manual_seed(5)) if choose == "sample" else None
        expected = key_by_key(head, features, rules, uniform)
    assert torch.equal(drawn, expected)
    assert drawn.sum() > 64 and (drawn.sum(dim=1) >= forced.sum(dim=1)).all()


def test_teacher_forced_decisions_on_the_greedy_frame_are_the_greedy_frame():
    head = keyed_head(seed=4)
    with torch.no_grad():
        features = torch.randn(50, 6)
        greedy = head.predicted_frames(features)
        assert torch.equal(head.decisions(features, greedy.float()), greedy)
        other = greedy.clone()
        other[:, 80:] = ~other[:, 80:]  # the top keys, decided first: every key below sees them changed
        assert not torch.equal(head.decisions(features, other.float())[:, :80], greedy[:, :80])
