"""Scoring a model: both contexts, exact NLL on known inputs, and metrics with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musiclstm import MusicLSTMError
from musiclstm.config import MODEL_PRESETS
from musiclstm.evaluate import evaluate_model, piece_logits
from musiclstm.metrics import bernoulli_nll, predictive_report
from musiclstm.model import MusicLSTM

SMALL = MODEL_PRESETS["small"]


def test_bernoulli_nll_of_a_constant_probability_is_analytic():
    p = 0.1
    roll = np.zeros((4, 88), dtype=bool)
    roll[:, :3] = True  # 3 keys sound, 85 are silent, every frame
    logits = np.full((4, 88), math.log(p / (1 - p)))
    expected = -(3 * math.log(p) + 85 * math.log(1 - p))
    assert bernoulli_nll(logits, roll) == pytest.approx([expected] * 4)
    assert predictive_report(logits, roll)["nll"] == pytest.approx(expected)


def test_a_perfect_predictor_scores_accuracy_one_and_a_silent_one_scores_zero():
    roll = np.zeros((3, 88), dtype=bool)
    roll[0, 10] = roll[2, [20, 30]] = True
    perfect = predictive_report(np.where(roll, 20.0, -20.0), roll)
    assert perfect["frame_accuracy"] == perfect["precision"] == perfect["recall"] == perfect["f1"] == 1.0
    assert perfect["binary_accuracy"] == 1.0 and perfect["nll"] < 1e-6
    silent = predictive_report(np.full((3, 88), -20.0), roll)
    assert silent["frame_accuracy"] == 0.0 and silent["recall"] == 0.0
    assert silent["binary_accuracy"] == pytest.approx(1 - 3 / 264)


def test_frame_accuracy_counts_true_and_false_positives_and_misses():
    roll = np.zeros((1, 88), dtype=bool)
    roll[0, [1, 2]] = True
    logits = np.full((1, 88), -5.0)
    logits[0, [2, 3]] = 5.0  # one hit, one false alarm, one miss
    report = predictive_report(logits, roll)
    assert report["frame_accuracy"] == pytest.approx(1 / 3)
    assert (report["precision"], report["recall"], report["f1"]) == pytest.approx((0.5, 0.5, 0.5))


@pytest.fixture
def trained_like_model():
    torch.manual_seed(3)
    model = MusicLSTM(SMALL).eval()
    with torch.no_grad():  # larger recurrent weights, so that context matters to the output
        model.lstm1.weight_hh_l0.mul_(4)
        model.lstm2.weight_hh_l0.mul_(4)
    return model


def test_stateful_scoring_equals_stepping_the_model_one_frame_at_a_time(trained_like_model):
    model = trained_like_model
    roll = np.random.default_rng(0).random((90, 88)) < 0.05
    logits = piece_logits(model, roll, "stateful")
    window = model.config.window
    frames = torch.cat([torch.zeros(window, 88), torch.from_numpy(roll.astype(np.float32))])
    state, stepped = None, []
    with torch.no_grad():
        for step in range(window + len(roll) - 1):
            output, state = model(frames[None, step : step + 1], state=state)
            if step >= window - 1:
                stepped.append(output[0])
    np.testing.assert_allclose(logits, torch.stack(stepped).numpy(), atol=1e-5)


def test_window_scoring_reads_exactly_the_window_before_each_frame(trained_like_model):
    model = trained_like_model
    window = model.config.window
    roll = np.random.default_rng(1).random((window + 20, 88)) < 0.05
    logits = piece_logits(model, roll, "window")
    stateful = piece_logits(model, roll, "stateful")
    np.testing.assert_allclose(logits[0], stateful[0], atol=1e-5)  # both: `window` frames of silence
    assert not np.allclose(logits[window + 5 :], stateful[window + 5 :], atol=1e-3)
    with torch.no_grad():
        alone, _ = model(torch.from_numpy(roll[10 : 10 + window].astype(np.float32))[None])
    np.testing.assert_allclose(logits[10 + window], alone[0].numpy(), atol=1e-5)


def test_evaluate_model_pools_every_frame_of_the_split(bach_corpus):
    model = MusicLSTM(SMALL)
    report = evaluate_model(model, bach_corpus, "valid", "stateful")
    pieces = bach_corpus.split("valid")
    assert report["frames"] == sum(piece.frames for piece in pieces) and report["pieces"] == len(pieces)
    assert report["context"] == "stateful" and report["split"] == "valid"
    # an untrained model says about 0.5 everywhere: 88 ln 2 nats per frame
    assert report["nll"] == pytest.approx(88 * math.log(2), rel=0.05)
    with pytest.raises(MusicLSTMError, match="unknown context 'sliding'"):
        evaluate_model(model, bach_corpus, "valid", "sliding")


def test_a_model_trained_with_pos_weight_is_scored_on_calibrated_probabilities(bach_corpus, trained_like_model):
    pieces = bach_corpus.split("valid")
    raw = np.concatenate([piece_logits(trained_like_model, piece.roll, "stateful") for piece in pieces])
    rolls = np.concatenate([piece.roll for piece in pieces])
    report = evaluate_model(trained_like_model, bach_corpus, "valid", "stateful", pos_weight=10.0)
    assert report["nll"] == pytest.approx(predictive_report(raw - math.log(10.0), rolls)["nll"], rel=1e-9)
    assert report["pos_weight"] == 10.0
