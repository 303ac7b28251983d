"""The output head: its loss, calibrated scoring and drawing under rules, each pinned by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musiclstm.music.metrics import bernoulli_nll
from musiclstm.network.heads import DrawRules, IndependentHead
from musiclstm.network.sampling import scale_mask


def head_with_logits(logits: torch.Tensor, pos_weight: float = 1.0) -> IndependentHead:
    """A head whose logits, for the feature vector [1.0], are `logits` (88,)."""
    head = IndependentHead(1, pos_weight)
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(logits)
    return head


ONE = torch.ones(1, 1)  # the feature vector of one step


def test_the_loss_weighs_a_sounding_note_pos_weight_times():
    frames = torch.zeros(1, 88)
    frames[0, 0] = 1.0
    for weight in (1.0, 10.0):
        expected = (weight + 87) * math.log(2) / 88  # every logit 0: each key costs ln 2, a sounding one w times
        assert head_with_logits(torch.zeros(88), weight).loss(ONE, frames).item() == pytest.approx(expected)


def test_training_with_pos_weight_then_calibrating_gives_the_true_probability():
    true_p, weight = 0.2, 10.0
    frames = torch.zeros(1000, 88)
    frames[:200, 0] = 1.0  # key 0 sounds in 20% of the frames
    head = head_with_logits(torch.zeros(88), weight)
    optimizer = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(800):
        optimizer.zero_grad()
        head.loss(torch.ones(1000, 1), frames).backward()
        optimizer.step()
    with torch.no_grad():
        raw = torch.sigmoid(head(ONE))[0, 0].item()
        calibrated = torch.sigmoid(head.calibrated_logits(ONE))[0, 0].item()
    assert raw == pytest.approx(weight * true_p / (weight * true_p + 1 - true_p), abs=1e-3)  # the weighted optimum
    assert calibrated == pytest.approx(true_p, abs=1e-3)


def test_frame_nll_is_the_bernoulli_nll_of_the_calibrated_logits():
    logits = torch.linspace(-3, 3, 88)
    frames = (torch.arange(88) % 7 == 0).float()[None]
    head = head_with_logits(logits, 10.0)
    expected = bernoulli_nll((logits - math.log(10.0)).numpy()[None], frames.numpy() > 0)
    with torch.no_grad():
        assert head.frame_nll(ONE, frames).numpy() == pytest.approx(expected, rel=1e-7)
        assert head.predicted_frames(ONE)[0].tolist() == (logits > math.log(10.0)).tolist()


def test_draw_keeps_the_key_forces_the_forced_keys_and_caps_the_notes():
    head = head_with_logits(torch.full((88,), 2.0))  # every key likely
    allowed = scale_mask("C", "major")[None]
    forced = torch.zeros(1, 88, dtype=torch.bool)
    forced[0, 39] = True  # middle C
    with torch.no_grad():
        free = head.draw(ONE, DrawRules(allowed=allowed))
        capped = head.draw(ONE, DrawRules(allowed=allowed, forced=forced, max_notes=3))
        cold = head_with_logits(torch.full((88,), -2.0)).draw(ONE, DrawRules(forced=forced, top_k=0))
    assert not (free & ~allowed).any() and free.sum() == allowed.sum()
    assert capped[0, 39] and capped.sum() == 3 and not (capped & ~allowed).any()
    assert np.flatnonzero(cold[0].numpy()).tolist() == [39]  # nothing else passes 0.5, and no fallback


def test_temperature_divides_each_logit_so_a_cold_draw_is_the_threshold():
    logits = torch.tensor([0.4] * 44 + [-0.4] * 44)
    head = head_with_logits(logits)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        cold = head.draw(ONE.expand(64, 1), DrawRules(temperature=0.01, choose="sample", top_k=0), generator)
    assert (cold == (logits > 0)).all()
