"""The classifier two-sample test: real against real is a coin toss, real against noise is not."""

from __future__ import annotations

import numpy as np
import pytest

from musiclstm import BUNDLED_MODEL, load_corpus
from musiclstm.judging.two_sample import FEATURES, passage_features, two_sample_test
from musiclstm.music.grid import Grid


def feature(roll: np.ndarray, name: str, steps_per_bar: int = 4) -> float:
    return passage_features(roll, steps_per_bar)[list(FEATURES).index(name)]


def test_note_lengths_are_the_runs_of_each_key():
    roll = np.zeros((6, 88), dtype=bool)
    roll[0:3, 40] = True  # 3 steps
    roll[4:6, 40] = True  # 2 steps, to the end
    roll[1, 10] = True  # 1 step
    assert feature(roll, "note_length") == (3 + 2 + 1) / 3 and feature(roll, "onsets_per_step") == 3 / 6


def test_passage_features_of_a_hand_built_passage():
    roll = np.zeros((8, 88), dtype=bool)
    roll[0:4, [39, 43, 46]] = True  # C major triad (MIDI 60, 64, 67) for a bar
    roll[4:8, [41, 44, 48]] = True  # D minor triad (62, 65, 69), top moving up 2, bass up 2
    assert feature(roll, "note_density") == 3 and feature(roll, "empty_steps") == 0
    assert feature(roll, "note_length") == 4 and feature(roll, "onsets_per_step") == 6 / 8
    assert feature(roll, "top_line_leap") == pytest.approx(2 / 7) and feature(roll, "bass_line_leap") == pytest.approx(
        2 / 7
    )
    assert feature(roll, "held_steps") == pytest.approx(6 / 7) and feature(roll, "repeated_bars") == 0
    assert feature(roll, "pitch_range") == 69 - 60 and feature(roll, "in_key") == 1
    assert feature(roll, "dissonant_steps") == 0
    roll[:, 40] = True  # C# against C and D: a semitone at every step
    assert feature(roll, "dissonant_steps") == 1


def test_a_silent_passage_has_features_and_no_nan():
    assert np.isfinite(passage_features(np.zeros((16, 88), dtype=bool), 4)).all()


@pytest.fixture(scope="module")
def held_out():
    """The held-out test chorales shipped with the bundled model, at 4 steps per beat."""
    corpus = load_corpus(BUNDLED_MODEL / "corpus")
    return [piece.roll for piece in corpus.split("test")]


def test_real_against_real_is_about_chance(held_out):
    order = np.random.default_rng(0).permutation(len(held_out))  # halves drawn at random, not by catalogue number
    half = len(order) // 2
    result = two_sample_test([held_out[i] for i in order[:half]], [held_out[i] for i in order[half:]], Grid(4))
    assert 0.3 <= result["accuracy"] <= 0.7
    assert result["folds"] == 5 and result["passages"]["real"] > 50 and result["passages"]["generated"] > 50


def test_real_against_random_rolls_is_told_apart(held_out):
    rng = np.random.default_rng(0)
    noise = [rng.random((256, 88)) < 4 / 88 for _ in range(12)]
    result = two_sample_test(held_out, noise, Grid(4))
    assert result["accuracy"] >= 0.95
    assert len(result["features"]) == 5 and {"feature", "meaning", "weight", "real", "generated"} <= set(
        result["features"][0]
    )


def test_too_few_pieces_to_cross_validate_are_reported_not_classified(held_out):
    result = two_sample_test(held_out, [held_out[0][:100]], Grid(4))
    assert result["accuracy"] is None and "needs 2 or more pieces" in result["reason"]
