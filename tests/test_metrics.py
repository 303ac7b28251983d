"""Metrics with known answers: the baselines by hand, statistics of tiny rolls, divergences and repeats."""

from __future__ import annotations

import math

import numpy as np
import pytest

from musiclstm.config import MusicLSTMError
from musiclstm.music.grid import Grid
from musiclstm.music.metrics import (
    baseline_logits,
    bernoulli_nll,
    bernoulli_report,
    best_key_rate,
    kl_divergence,
    marginal_baseline,
    music_statistics,
    piece_statistics,
    pitch_class_counts,
    predictive_report,
    previous_step_baseline,
    repeated_window_rate,
    rhythm_statistics,
)
from musiclstm.music.piece import Piece


def roll_of(*steps: list[int], width: int = 3) -> np.ndarray:
    roll = np.zeros((len(steps), width), dtype=bool)
    for step, keys in enumerate(steps):
        roll[step, keys] = True
    return roll


# Two training pieces over three keys: key 0 sounds in 3 of 5 frames, key 1 in 1, key 2 never.
TRAIN = [roll_of([0], [0], []), roll_of([1], [0])]


def test_the_marginal_baseline_is_each_keys_add_one_frequency():
    np.testing.assert_allclose(marginal_baseline(TRAIN), [(3 + 1) / 7, (1 + 1) / 7, (0 + 1) / 7])


def test_the_previous_step_baseline_counts_transitions_by_hand():
    on_after_on, on_after_off = previous_step_baseline(TRAIN)
    # key 0: "before" states over the 5 frames are off, on, on | off, off (each piece starts after silence)
    #   on before -> now: on, off            => (1 + 1) / (2 + 2)
    #   off before -> now: on, off, on        => (2 + 1) / (3 + 2)
    assert (on_after_on[0], on_after_off[0]) == pytest.approx((2 / 4, 3 / 5))
    # key 1: on before once (piece 2, frame 1), silent then   => (0 + 1) / (1 + 2)
    #   off before in the other 4 frames, sounding in 1        => (1 + 1) / (4 + 2)
    assert (on_after_on[1], on_after_off[1]) == pytest.approx((1 / 3, 1 / 3))


def test_baseline_nll_on_a_test_piece_matches_the_hand_computed_value():
    test = [roll_of([0], [0])]
    logits = baseline_logits(test, TRAIN)
    p = marginal_baseline(TRAIN)
    frame = -(math.log(p[0]) + math.log(1 - p[1]) + math.log(1 - p[2]))
    assert bernoulli_report(logits["marginal"], test[0])["nll"] == pytest.approx(frame)
    on_after_on, on_after_off = previous_step_baseline(TRAIN)
    first = -(math.log(on_after_off[0]) + math.log(1 - on_after_off[1]) + math.log(1 - on_after_off[2]))
    second = -(math.log(on_after_on[0]) + math.log(1 - on_after_off[1]) + math.log(1 - on_after_off[2]))
    assert bernoulli_report(logits["previous_step"], test[0])["nll"] == pytest.approx((first + second) / 2)


def test_piece_statistics_of_a_small_roll_and_of_silence():
    roll = np.zeros((4, 88), dtype=bool)
    roll[0, [39, 43, 46]] = True  # C E G
    roll[1, 40] = True  # C#
    stats = piece_statistics(roll, frozenset({0, 4, 7}))
    assert stats == {"steps": 4, "note_density": 1.0, "polyphony": 2.0, "empty_step_rate": 0.5, "in_key_rate": 0.75}
    silent = piece_statistics(np.zeros((3, 88), dtype=bool), frozenset({0}))
    assert (silent["note_density"], silent["polyphony"], silent["in_key_rate"]) == (0.0, 0.0, None)


def test_the_best_key_of_a_c_major_scale_holds_all_its_notes():
    roll = np.zeros((7, 88), dtype=bool)
    for step, pitch in enumerate([60, 62, 64, 65, 67, 69, 71]):
        roll[step, pitch - 21] = True
    assert best_key_rate(roll) == 1.0
    roll[0, 61 - 21] = True  # one C# among 8 notes
    assert best_key_rate(roll) == pytest.approx(7 / 8)
    assert best_key_rate(np.zeros((2, 88), dtype=bool)) is None
    assert pitch_class_counts(roll)[[0, 1]].tolist() == [1, 1]


def test_kl_divergence_is_zero_for_equal_histograms_and_grows_with_difference():
    counts = np.array([5.0, 0, 3, 0, 2, 0, 0, 4, 0, 1, 0, 0])
    assert kl_divergence(counts, counts) == 0.0
    assert 0 < kl_divergence(counts, np.roll(counts, 1)) < kl_divergence(counts, np.roll(counts, 6)) + 1


def test_repeated_window_rate_flags_a_loop_and_spares_a_varied_piece():
    loop = np.zeros((20, 88), dtype=bool)
    loop[:, 39] = True  # one held note: every window the same
    assert repeated_window_rate(loop, 4) == pytest.approx(16 / 17)
    scale = np.zeros((20, 88), dtype=bool)
    scale[np.arange(20), 30 + np.arange(20)] = True
    assert repeated_window_rate(scale, 4) == 0.0
    assert repeated_window_rate(np.zeros((20, 88), dtype=bool), 4) == 0.0


def test_music_statistics_pools_frames_and_reports_range_and_histogram():
    a = np.zeros((2, 88), dtype=bool)
    a[0, 39] = True  # C4
    b = np.zeros((2, 88), dtype=bool)
    b[:, [39, 46]] = True  # C4 and G4 held
    stats = music_statistics([Piece(a, grid=Grid(1)), Piece(b, grid=Grid(1))])
    assert (stats["pieces"], stats["frames"], stats["note_density"]) == (2, 4, 5 / 4)
    assert stats["pitch_range"] == [60, 67] and stats["empty_step_rate"] == 0.25
    assert stats["pitch_class_histogram"][0] == 0.6 and stats["pitch_class_histogram"][7] == 0.4
    assert stats["notes_per_step_histogram"] == [0.25, 0.25, 0.5, 0, 0, 0, 0, 0, 0]  # steps with 0, 1, 2, ... notes
    crowded = music_statistics([Piece(np.ones((1, 88), dtype=bool), grid=Grid(1))])
    assert crowded["notes_per_step_histogram"][-1] == 1.0  # the last bin holds 8 notes or more
    assert music_statistics([])["notes_per_step_histogram"] == [0.0] * 9


def test_bernoulli_nll_of_a_constant_probability_is_analytic():
    p = 0.1
    roll = np.zeros((4, 88), dtype=bool)
    roll[:, :3] = True  # 3 keys sound, 85 are silent, every frame
    logits = np.full((4, 88), math.log(p / (1 - p)))
    expected = -(3 * math.log(p) + 85 * math.log(1 - p))
    assert bernoulli_nll(logits, roll) == pytest.approx([expected] * 4)
    assert bernoulli_report(logits, roll)["nll"] == pytest.approx(expected)


def test_a_perfect_predictor_scores_accuracy_one_and_a_silent_one_scores_zero():
    roll = np.zeros((3, 88), dtype=bool)
    roll[0, 10] = roll[2, [20, 30]] = True
    perfect = bernoulli_report(np.where(roll, 20.0, -20.0), roll)
    assert perfect["frame_accuracy"] == perfect["precision"] == perfect["recall"] == perfect["f1"] == 1.0
    assert perfect["binary_accuracy"] == 1.0 and perfect["nll"] < 1e-6
    silent = bernoulli_report(np.full((3, 88), -20.0), roll)
    assert silent["frame_accuracy"] == 0.0 and silent["recall"] == 0.0 and silent["f1"] == 0.0
    wrong = bernoulli_report(np.where(roll, -20.0, 20.0), roll)  # every note it claims is wrong, every one missed
    assert wrong["precision"] == wrong["recall"] == wrong["f1"] == 0.0
    assert silent["binary_accuracy"] == pytest.approx(1 - 3 / 264)


def test_frame_accuracy_counts_true_and_false_positives_and_misses():
    roll = np.zeros((1, 88), dtype=bool)
    roll[0, [1, 2]] = True
    logits = np.full((1, 88), -5.0)
    logits[0, [2, 3]] = 5.0  # one hit, one false alarm, one miss
    report = bernoulli_report(logits, roll)
    assert report["frame_accuracy"] == pytest.approx(1 / 3)
    assert (report["precision"], report["recall"], report["f1"]) == pytest.approx((0.5, 0.5, 0.5))


def test_a_predictive_report_takes_any_heads_frame_nll_and_predicted_frames():
    roll = np.zeros((2, 88), dtype=bool)
    roll[:, 5] = True
    predicted = roll.copy()
    predicted[1, 6] = True  # one false alarm
    report = predictive_report(np.array([1.0, 3.0]), predicted, roll)
    assert report["nll"] == 2.0 and report["frames"] == 2
    assert report["frame_accuracy"] == pytest.approx(2 / 3) and report["recall"] == 1.0


def notes_roll(n_steps: int, *notes: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A roll of `n_steps` steps and its onsets from notes (key index, start step, end step)."""
    roll, onsets = np.zeros((n_steps, 88), dtype=bool), np.zeros((n_steps, 88), dtype=bool)
    for key, start, end in notes:
        roll[start:end, key] = True
        onsets[start, key] = True
    return roll, onsets


def test_quarter_notes_start_on_the_first_sixteenth_and_none_lasts_one_step():
    roll, onsets = notes_roll(12, (39, 0, 4), (43, 4, 8), (39, 8, 12))  # C E C, a beat each
    rhythm = rhythm_statistics([Piece(roll, onsets, Grid(4))])
    assert rhythm == {
        "notes": 3,
        "steps_per_beat": 4,
        "position_unit": "sixteenth",
        "onsets_by_position": [1.0, 0.0, 0.0, 0.0],
        "one_step_note_rate": 0.0,
        "mean_note_beats": 1.0,
        "struck_again_rate": 0.0,
    }


def test_sixteenth_notes_count_by_their_place_in_the_beat_from_the_rolls_first_step():
    roll, onsets = notes_roll(6, (39, 0, 1), (40, 1, 2), (41, 2, 3), (42, 3, 4), (43, 4, 5))
    rhythm = rhythm_statistics([Piece(roll, onsets, Grid(4))])
    assert rhythm["onsets_by_position"] == [0.4, 0.2, 0.2, 0.2]
    assert (rhythm["one_step_note_rate"], rhythm["mean_note_beats"]) == (1.0, 0.25)
    after_a_primer = rhythm_statistics([Piece(roll, onsets, Grid(4).shifted(5))])  # steps 5..10 of the piece
    assert after_a_primer["onsets_by_position"] == [0.2, 0.4, 0.2, 0.2]  # places 1, 2, 3, 0, 1


def test_a_pickup_moves_the_beat_with_the_bar_line():
    roll, onsets = notes_roll(8, (39, 2, 6), (40, 6, 8))
    assert rhythm_statistics([Piece(roll, onsets, Grid(4))])["onsets_by_position"] == [0, 0, 1.0, 0]
    pickup = Grid(4, bar_offset=2)  # an eighth-note pickup: bar lines at steps 2, 18, ...
    assert rhythm_statistics([Piece(roll, onsets, pickup)])["onsets_by_position"] == [1.0, 0, 0, 0]


def test_a_key_struck_again_is_a_note_of_its_own_only_with_onsets():
    roll, onsets = notes_roll(4, (39, 0, 2), (39, 2, 4))  # C struck at 0 and again at 2, no rest between
    with_onsets = rhythm_statistics([Piece(roll, onsets, Grid(4))])
    assert (with_onsets["notes"], with_onsets["struck_again_rate"], with_onsets["mean_note_beats"]) == (2, 0.5, 0.5)
    without = rhythm_statistics([Piece(roll, onsets, Grid(4))], with_onsets=False)
    assert (without["notes"], without["struck_again_rate"], without["mean_note_beats"]) == (1, None, 1.0)


def test_a_note_after_a_rest_is_not_struck_again():
    roll, onsets = notes_roll(5, (39, 0, 2), (39, 3, 5))
    assert rhythm_statistics([Piece(roll, onsets, Grid(4))])["struck_again_rate"] == 0.0


def test_a_grid_without_sixteenths_counts_onsets_by_step_of_the_beat():
    roll, onsets = notes_roll(6, (39, 0, 1), (40, 1, 3), (41, 4, 6))  # triplets: places 0, 1, 1
    rhythm = rhythm_statistics([Piece(roll, onsets, Grid(3))])
    assert (rhythm["position_unit"], rhythm["onsets_by_position"]) == ("step", [0.3333, 0.6667, 0.0])
    eighth_grid = rhythm_statistics([Piece(*notes_roll(8, (39, 1, 2), (40, 2, 4)), Grid(8))])
    assert eighth_grid["onsets_by_position"] == [0.5, 0.5, 0, 0]  # step 1 of 8 lies within the first sixteenth


def test_rhythm_of_silence_or_nothing_has_no_shares():
    for pieces in ([], [Piece(np.zeros((4, 88), dtype=bool))]):
        rhythm = rhythm_statistics(pieces)
        assert rhythm["notes"] == 0
        assert [rhythm[key] for key in ("onsets_by_position", "one_step_note_rate", "mean_note_beats")] == [None] * 3


def test_rhythm_refuses_pieces_on_grids_of_different_steps_per_beat():
    roll = np.zeros((4, 88), dtype=bool)
    with pytest.raises(MusicLSTMError, match=r"rhythm statistics need one grid, not pieces at \[2, 4\] steps per beat"):
        rhythm_statistics([Piece(roll, grid=Grid(4)), Piece(roll, grid=Grid(2))])


def test_music_statistics_reads_notes_from_the_rolls_alone_when_told_to():
    roll, onsets = notes_roll(4, (39, 0, 2), (39, 2, 4))
    assert music_statistics([Piece(roll, onsets)], with_onsets=False)["rhythm"]["notes"] == 1
    placed = music_statistics([Piece(roll, onsets)])["rhythm"]
    assert (placed["notes"], placed["struck_again_rate"]) == (2, 0.5)


def test_music_statistics_counts_voices_on_the_pieces_own_grid():
    roll = np.zeros((8, 88), dtype=bool)
    roll[:4, [39, 43, 46]] = True  # a C major chord held 4 steps: two beats at 2 steps per beat, one at 4
    assert music_statistics([Piece(roll, grid=Grid(2))])["voices"]["held_chords"] == 1
    voices = music_statistics([Piece(roll, grid=Grid(4))])["voices"]
    assert (voices["held_chords"], voices["three_note_steps"], voices["count_changes_per_step"]) == (0, 0.5, 1 / 7)
    assert music_statistics([])["voices"]["steps"] == 0
