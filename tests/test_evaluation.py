"""Scoring a model: both contexts, exact NLL on known inputs, and metrics with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musiclstm import MusicLSTMError
from musiclstm.config import MODEL_PRESETS
from musiclstm.judging.evaluation import evaluate_model, piece_features, score_piece
from musiclstm.music.grid import COMMON_TIME
from musiclstm.music.metrics import bernoulli_nll, shift_down
from musiclstm.network import model as model_module
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import as_events, encode, input_width, with_lead_in

SMALL = MODEL_PRESETS["small"]


@pytest.fixture
def trained_like_model():
    torch.manual_seed(3)
    model = MusicLSTM(SMALL).eval()
    with torch.no_grad():  # larger recurrent weights, so that context matters to the output
        model.lstm1.weight_hh_l0.mul_(4)
        model.lstm2.weight_hh_l0.mul_(4)
    return model


def all_features(model, events, context, grid=COMMON_TIME) -> np.ndarray:
    return torch.cat(list(piece_features(model, events, context, grid))).numpy()


def random_events(steps: int, seed: int, density: float = 0.05) -> np.ndarray:
    """Events (steps, 176) bool of a random roll, a third of its held keys struck again."""
    rng = np.random.default_rng(seed)
    roll = rng.random((steps, 88)) < density
    return as_events(roll, roll & (rng.random((steps, 88)) < 0.3))


def test_stateful_scoring_equals_stepping_the_model_one_frame_at_a_time(trained_like_model):
    model = trained_like_model
    events = random_events(90, 0)
    features = all_features(model, events, "stateful")
    window = model.config.window
    frames = encode(with_lead_in(events, window), -window, model.config.inputs)  # (window + 90, 188)
    state, stepped = None, []
    with torch.no_grad():
        for step in range(window + len(events) - 1):
            output, state = model(frames[None, step : step + 1], state=state)
            if step >= window - 1:
                stepped.append(output[0])
    # float32 rounding, which the scaled-up recurrent weights grow over 154 steps of 188 inputs (3e-5; 6e-15 in float64)
    np.testing.assert_allclose(features, torch.stack(stepped).numpy(), atol=1e-4)


def test_window_scoring_reads_exactly_the_window_before_each_frame(trained_like_model):
    model = trained_like_model
    window = model.config.window
    events = random_events(window + 20, 1)
    logits = all_features(model, events, "window")
    stateful = all_features(model, events, "stateful")
    np.testing.assert_allclose(logits[0], stateful[0], atol=1e-5)  # both: `window` frames of silence
    assert not np.allclose(logits[window + 5 :], stateful[window + 5 :], atol=1e-3)
    with torch.no_grad():
        alone, _ = model(encode(events[10 : 10 + window], 10, model.config.inputs)[None])
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
            [
                trained_like_model.head(
                    trained_like_model.head_input(
                        torch.from_numpy(
                            all_features(
                                trained_like_model, as_events(piece.roll, piece.onsets), "stateful", piece.grid
                            )
                        ),
                        torch.from_numpy(shift_down(piece.roll)).float(),  # the keys sounding the step before
                    )
                )
                for piece in pieces
            ]
        )
    rolls = np.concatenate([piece.roll for piece in pieces])
    weighted = MusicLSTM(SMALL, pos_weight=10.0).eval()
    weighted.load_state_dict(trained_like_model.state_dict())
    report = evaluate_model(weighted, bach_corpus, "valid", "stateful")
    assert report["nll"] == pytest.approx(bernoulli_nll(raw - math.log(10.0), rolls).mean(), rel=1e-6)
    assert report["pos_weight"] == 10.0


@pytest.mark.parametrize("rows_per_call", [1, 7, 64])
def test_a_piece_read_in_chunks_scores_as_if_read_in_one_call(trained_like_model, monkeypatch, rows_per_call):
    """Chunks shorter than the lead-in, and ones cutting the piece anywhere, carry the state across."""
    events = random_events(150, 2)
    whole = score_piece(trained_like_model, events, "stateful")
    monkeypatch.setattr(model_module, "ROWS_PER_CALL", rows_per_call)
    width = input_width(trained_like_model.config)
    assert len(trained_like_model.chunks(torch.zeros(1, 150, width))) == -(-150 // rows_per_call)
    chunked = score_piece(trained_like_model, events, "stateful")
    np.testing.assert_allclose(chunked[0], whole[0], rtol=1e-5)
    np.testing.assert_allclose(chunked[1], whole[1], rtol=1e-5)
    np.testing.assert_array_equal(chunked[2], whole[2])
    assert chunked[3] == pytest.approx(whole[3], rel=1e-5)


def test_a_model_with_a_strike_head_adds_the_held_keys_strikes_to_the_nll_and_the_seeds_reports_none(bach_corpus):
    roll = np.zeros((4, 88), dtype=bool)
    roll[[0, 2], 40] = True  # struck and let go twice: nothing held over, nothing to decide
    roll[1:, 60] = True  # struck at step 1, then held over twice
    torch.manual_seed(0)
    model = MusicLSTM(SMALL).eval()
    nll, event_nll, _, _ = score_piece(model, as_events(roll), "stateful")
    np.testing.assert_allclose(event_nll[:2], nll[:2], rtol=1e-12)
    assert (event_nll[2:] > nll[2:]).all()
    report = evaluate_model(model, bach_corpus, "valid", "stateful")
    assert report["event_nll"] > report["nll"]  # chorales hold keys over: the strike decisions cost nats
    seed = MusicLSTM(MODEL_PRESETS["seed"]).eval()
    assert score_piece(seed, as_events(roll), "stateful")[1] is None
    assert evaluate_model(seed, bach_corpus, "valid", "stateful")["event_nll"] is None
