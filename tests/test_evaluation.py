"""Scoring a model: both contexts, exact NLL on known inputs, and metrics with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musiclstm import MusicLSTMError
from musiclstm.config import MODEL_PRESETS
from musiclstm.evaluation import evaluate_model, piece_features
from musiclstm.metrics import bernoulli_nll
from musiclstm.model import MusicLSTM

SMALL = MODEL_PRESETS["small"]


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
    features = piece_features(model, roll, "stateful").numpy()
    window = model.config.window
    frames = torch.cat([torch.zeros(window, 88), torch.from_numpy(roll.astype(np.float32))])
    state, stepped = None, []
    with torch.no_grad():
        for step in range(window + len(roll) - 1):
            output, state = model(frames[None, step : step + 1], state=state)
            if step >= window - 1:
                stepped.append(output[0])
    np.testing.assert_allclose(features, torch.stack(stepped).numpy(), atol=1e-5)


def test_window_scoring_reads_exactly_the_window_before_each_frame(trained_like_model):
    model = trained_like_model
    window = model.config.window
    roll = np.random.default_rng(1).random((window + 20, 88)) < 0.05
    logits = piece_features(model, roll, "window").numpy()
    stateful = piece_features(model, roll, "stateful").numpy()
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
    with torch.no_grad():
        raw = np.concatenate(
            [trained_like_model.head(piece_features(trained_like_model, piece.roll, "stateful")) for piece in pieces]
        )
    rolls = np.concatenate([piece.roll for piece in pieces])
    weighted = MusicLSTM(SMALL, pos_weight=10.0).eval()
    weighted.load_state_dict(trained_like_model.state_dict())
    report = evaluate_model(weighted, bach_corpus, "valid", "stateful")
    assert report["nll"] == pytest.approx(bernoulli_nll(raw - math.log(10.0), rolls).mean(), rel=1e-6)
    assert report["pos_weight"] == 10.0
