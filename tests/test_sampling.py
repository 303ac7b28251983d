"""Choosing notes: temperature per key, key masks without renormalising, threshold, sampling, fallback, cap."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musiclstm import MusicLSTMError
from musiclstm.config import STRATEGIES, key_root, scale_pitch_classes
from musiclstm.music.metrics import best_key
from musiclstm.network.sampling import (
    VOICE_PENALTY,
    apply_temperature,
    choose_notes,
    note_probabilities,
    scale_mask,
    with_voices,
    without_parallels,
)


def test_temperature_divides_each_keys_logit_independently():
    logits = torch.tensor([[math.log(3.0), 0.0, -math.log(3.0)]])  # probabilities 0.75, 0.5, 0.25
    probabilities = torch.sigmoid(apply_temperature(logits, 0.5))
    torch.testing.assert_close(probabilities, torch.tensor([[0.9, 0.5, 0.1]]))
    assert probabilities.sum() > 1  # independent keys: nothing forces them to sum to 1, unlike the seed's softmax


def test_several_keys_can_pass_the_threshold_at_once_where_the_seeds_softmax_lets_none():
    logits = torch.full((1, 88), -6.0)
    logits[0, [39, 43, 46]] = 3.0  # a C major triad the model is sure of
    probabilities = note_probabilities(logits, temperature=0.8, allowed=None)
    assert torch.nonzero(choose_notes(torch.logit(probabilities), None, top_k=0)[0]).flatten().tolist() == [39, 43, 46]
    seed_softmax = torch.softmax(torch.log(torch.sigmoid(logits)) / 0.8, dim=1)
    assert (seed_softmax > 0.5).sum() == 0


def test_a_temperature_near_zero_plays_exactly_the_keys_above_even_odds():
    logits = torch.tensor([[0.01, -0.01, 2.0]])
    probabilities = torch.sigmoid(apply_temperature(logits, 1e-4))
    assert probabilities.tolist()[0] == pytest.approx([1.0, 0.0, 1.0], abs=1e-6)


def test_key_names_cover_all_twelve_roots_with_sharps_and_flats():
    assert [
        key_root(name) for name in ("C", "C#", "Db", "D", "Eb", "E", "F", "F#", "Gb", "G", "Ab", "A", "Bb", "B")
    ] == [0, 1, 1, 2, 3, 4, 5, 6, 6, 7, 8, 9, 10, 11]
    assert key_root("f#") == key_root("F♯") == 6 and key_root("Cb") == 11 and key_root("B#") == 0
    with pytest.raises(MusicLSTMError, match="unknown key 'H'"):
        key_root("H")


def test_scale_mask_marks_the_scales_pitch_classes_on_every_octave_from_a0_to_c8():
    mask = scale_mask("F#", "major")  # F# G# A# B C# D# E#(F)
    pitch_classes = {(21 + k) % 12 for k in range(88) if mask[k]}
    assert pitch_classes == {6, 8, 10, 11, 1, 3, 5}
    assert mask.sum() == sum(1 for k in range(88) if (21 + k) % 12 in pitch_classes)
    assert bool(scale_mask("A", "minor")[0]) and bool(scale_mask("C", "major")[87])  # A0 and C8
    assert scale_mask("C", "chromatic").all()
    with pytest.raises(MusicLSTMError, match="unknown scale 'lydian'"):
        scale_mask("C", "lydian")


def test_the_key_mask_zeroes_out_of_key_notes_and_leaves_in_key_ones_as_they_were():
    logits = torch.zeros(1, 88)
    mask = scale_mask("C", "major")
    probabilities = note_probabilities(logits, 1.0, mask)
    assert probabilities[0, mask].eq(0.5).all() and probabilities[0, ~mask].eq(0).all()


def test_a_silent_step_gets_its_three_most_likely_allowed_notes():
    probabilities = torch.full((2, 88), 0.01)
    probabilities[0, [10, 11, 12, 13]] = torch.tensor([0.3, 0.4, 0.2, 0.1])
    allowed = torch.ones(88, dtype=torch.bool)
    allowed[11] = False
    notes = choose_notes(torch.logit(probabilities * allowed), allowed, threshold=0.5, top_k=3)
    assert torch.nonzero(notes[0]).flatten().tolist() == [10, 12, 13]
    assert notes[1].sum() == 3 and not notes[1, 11]


def test_a_melody_left_alone_gets_the_most_likely_allowed_notes_under_it():
    probabilities = torch.full((2, 88), 0.01)
    probabilities[:, [10, 11, 12, 50]] = torch.tensor([0.3, 0.4, 0.2, 0.45])
    forced = torch.zeros(2, 88, dtype=torch.bool)
    forced[:, 40] = True  # the melody's key
    allowed = (torch.arange(88) <= 40).expand(2, -1)  # nothing above it
    probabilities[1, 12] = 0.9  # a voice that passes the threshold: no fallback
    notes = choose_notes(torch.logit(probabilities), allowed, threshold=0.5, top_k=3, forced=forced)
    assert torch.nonzero(notes[0]).flatten().tolist() == [10, 11, 40]  # the melody and two voices
    assert torch.nonzero(notes[1]).flatten().tolist() == [12, 40]


def test_max_notes_keeps_the_most_likely_keys_of_a_crowded_step():
    probabilities = torch.zeros(1, 88)
    probabilities[0, [5, 20, 30, 40, 50]] = torch.tensor([0.9, 0.6, 0.95, 0.7, 0.8])
    notes = choose_notes(torch.logit(probabilities), None, threshold=0.5, max_notes=2)
    assert torch.nonzero(notes[0]).flatten().tolist() == [5, 30]


def test_sampling_draws_each_key_at_its_own_probability_and_repeats_with_the_seed():
    probabilities = torch.full((4000, 88), 0.0)
    probabilities[:, 7] = 0.25
    probabilities[:, 60] = 0.75
    logits = torch.logit(probabilities)
    notes = choose_notes(logits, None, "sample", top_k=0, generator=torch.Generator().manual_seed(1))
    assert notes[:, 7].float().mean().item() == pytest.approx(0.25, abs=0.03)
    assert notes[:, 60].float().mean().item() == pytest.approx(0.75, abs=0.03)
    assert notes.sum() == notes[:, [7, 60]].sum()
    again = choose_notes(logits, None, "sample", top_k=0, generator=torch.Generator().manual_seed(1))
    assert torch.equal(notes, again)


def test_the_threshold_is_strict():
    probabilities = torch.zeros(1, 88)
    probabilities[0, 3] = 0.5
    probabilities[0, 4] = 0.5001
    notes = choose_notes(torch.logit(probabilities), None, threshold=0.5, top_k=0)
    assert torch.nonzero(notes[0]).flatten().tolist() == [4]


def test_the_strategies_are_the_specifications_table():
    table = {name: (s.temperature, s.scale) for name, s in STRATEGIES.items()}
    assert table == {
        "conservative": (0.5, None),  # the specification's "major" removed notes Bach plays (docs: errata)
        "balanced": (0.8, None),
        "creative": (1.2, None),
        "free": (1.0, None),
        "jazz": (0.9, "blues"),
    }


def test_the_mode_scale_plays_a_minor_keys_raised_sixth_and_seventh_and_a_major_keys_own_scale():
    assert scale_pitch_classes("A minor", "mode") == {9, 11, 0, 2, 4, 5, 6, 7, 8}  # A B C D E F F# G G#
    assert scale_pitch_classes("C", "mode") == scale_pitch_classes("C major", "major") == {0, 2, 4, 5, 7, 9, 11}
    with pytest.raises(MusicLSTMError, match="unknown mode 'dorian' in key 'D dorian'"):
        scale_pitch_classes("D dorian", "mode")


def test_the_key_of_a_minor_chorale_is_found_minor_where_counting_scale_notes_finds_its_relative_major():
    roll = np.zeros((64, 88), dtype=bool)
    chords = [(57, 60, 64), (52, 56, 59, 62), (57, 60, 64), (50, 53, 57), (52, 56, 59), (45, 57, 60, 64)]
    for step, chord in enumerate(chords):  # A minor: i V7 i iv V i
        roll[8 * step : 8 * step + 8, [pitch - 21 for pitch in chord]] = True
    assert best_key(roll) == "A minor"
    assert best_key(np.zeros((4, 88), dtype=bool)) is None
    c_major = np.zeros((16, 88), dtype=bool)
    c_major[:, [48 - 21, 52 - 21, 55 - 21]] = True
    assert best_key(c_major) == "C major"


def chord(*pitches: int) -> torch.Tensor:
    """One step sounding these MIDI pitches, (88,) bool."""
    step = torch.zeros(88, dtype=torch.bool)
    step[[pitch - 21 for pitch in pitches]] = True
    return step


def test_a_candidate_step_with_parallel_fifths_or_octaves_is_dropped_where_another_has_none():
    c_major = chord(48, 55, 64, 72)  # C3 G3 E4 C5
    parallel = chord(50, 57, 65, 74)  # every voice up a tone: C-G to D-A fifths, C-C to D-D octaves
    contrary = chord(43, 55, 62, 71)  # G2 G3 D4 B4: bass down, upper voices hold or fall
    candidates = torch.stack([torch.stack([parallel, contrary]), torch.stack([parallel, parallel])])
    weights = torch.zeros(2, 2, dtype=torch.float64)
    kept = without_parallels(weights, candidates, torch.stack([c_major, c_major]))
    assert kept[0].tolist() == [-math.inf, 0.0]  # the parallel one dropped, the contrary one kept
    assert kept[1].tolist() == [0.0, 0.0]  # no candidate without parallels: the row is left as drawn


def test_a_candidate_step_loses_weight_per_key_it_sounds_more_or_fewer_than_its_pieces_voices():
    four, three, five = chord(48, 55, 64, 72), chord(48, 55, 64), chord(48, 52, 55, 64, 72)
    candidates = torch.stack([torch.stack([four, three, five]), torch.stack([four, three, five])])
    weights = torch.zeros(2, 3, dtype=torch.float64)
    kept = with_voices(weights, candidates, torch.tensor([4, 0]))
    assert kept[0].tolist() == [0.0, -VOICE_PENALTY, -VOICE_PENALTY]  # one key fewer, one key more
    assert kept[1].tolist() == [0.0, 0.0, 0.0]  # a silent primer gives no voices to keep
