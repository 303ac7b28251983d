"""Texture and voice leading on hand-made passages: every figure an exact count."""

import numpy as np
import pytest

from musiclstm.config import MusicLSTMError
from musiclstm.music.voices import voice_statistics

DIMINISHED = [(48, 51, 54, 57), (49, 52, 55, 58), (50, 53, 56, 59)]  # no fifth or octave between any two keys


def passage(*chords: tuple[int, ...]) -> np.ndarray:
    """A roll sounding each chord (MIDI pitches; () for silence) for one step, in order."""
    roll = np.zeros((len(chords), 88), dtype=bool)
    for step, chord in enumerate(chords):
        roll[step, [pitch - 21 for pitch in chord]] = True
    return roll


def test_one_planted_parallel_fifth_among_five_chord_changes_is_20_per_100():
    # bass and tenor a fifth apart both rise a tone: 48-55 -> 50-57. Tenor-alto and alto-soprano reach a fifth
    # at the second chord only, which is no parallel.
    fifths = [(48, 55, 65, 69), (50, 57, 64, 71)]
    stats = voice_statistics([passage(DIMINISHED[0], DIMINISHED[1], *fifths, DIMINISHED[2], DIMINISHED[0])], 4)
    assert (stats["chord_changes"], stats["parallels"]) == (5, 1)
    assert stats["parallels_per_100_changes"] == 20.0


def test_contrary_motion_into_a_fifth_is_not_a_parallel():
    # bass 48 -> 50 up, soprano 67 -> 57 down: a twelfth to a fifth, by contrary motion
    stats = voice_statistics([passage((48, 51, 54, 67), (50, 52, 54, 57))], 4)
    assert (stats["chord_changes"], stats["parallels"], stats["parallels_per_100_changes"]) == (1, 0, 0.0)


def test_a_fifth_kept_while_one_voice_stands_still_is_not_a_parallel():
    # the bass holds 48, the soprano leaps 67 -> 79: a twelfth to a nineteenth, but only one voice moves
    stats = voice_statistics([passage((48, 51, 54, 67), (48, 51, 54, 79))], 4)
    assert (stats["chord_changes"], stats["parallels"]) == (1, 0)


def test_parallel_double_octaves_and_an_octave_to_a_double_octave_are_parallels():
    two_octaves = passage((48, 51, 54, 72), (50, 53, 56, 74))  # every voice up a tone; bass and soprano 24 apart
    widening = passage((48, 51, 54, 60), (50, 53, 56, 74))  # bass and soprano an octave, then two octaves
    stats = voice_statistics([two_octaves, widening], 4)
    assert (stats["chord_changes"], stats["parallels"], stats["parallels_per_100_changes"]) == (2, 2, 100.0)


def test_each_pair_of_voices_counts_once_per_change():
    # three fifths stacked (48-55-62-69) all rise a tone: 3 pairs a fifth apart, and 48-62 and 55-69 ninths
    stats = voice_statistics([passage((48, 55, 62, 69), (50, 57, 64, 71))], 4)
    assert stats["parallels"] == 3


def test_a_voice_dropped_for_a_bar_changes_the_count_twice():
    chord, without_alto = (48, 55, 64, 72), (48, 55, 72)
    roll = passage(*[chord] * 16, *[without_alto] * 16, *[chord] * 16)
    stats = voice_statistics([roll], 4)
    assert stats["steps"] == 48
    assert stats["notes_per_step"] == [0.0, 0.0, 0.0, round(1 / 3, 4), round(2 / 3, 4), 0.0]
    assert stats["four_note_steps"] == pytest.approx(2 / 3) and stats["three_note_steps"] == pytest.approx(1 / 3)
    assert stats["count_changes_per_step"] == pytest.approx(2 / 47)
    assert stats["chord_changes"] == 0 and stats["parallels_per_100_changes"] is None
    assert stats["held_chords"] == 3 and stats["phrase_ends_per_64_steps"] == pytest.approx(3 * 64 / 48)


def test_a_chord_held_two_beats_is_a_phrase_end_and_one_held_a_step_less_is_not():
    chord = (60, 64, 67)
    roll = np.zeros((64, 88), dtype=bool)
    roll[:64] = passage(*[chord] * 8, (), *[chord] * 7, (), *[(60, 64)] * 16, *[()] * 31)
    stats = voice_statistics([roll], 4)
    assert stats["held_chords"] == 1 and stats["phrase_ends_per_64_steps"] == 1.0
    assert voice_statistics([roll], 2)["held_chords"] == 2  # two beats are 4 steps at 2 steps per beat
    assert voice_statistics([roll], 8)["held_chords"] == 0


def test_a_chord_whose_keys_change_is_two_runs():
    roll = passage(*[(60, 64, 67)] * 6, *[(60, 64, 69)] * 6)
    assert voice_statistics([roll], 4)["held_chords"] == 0


def test_fermata_spans_are_counted_per_64_steps_and_none_when_not_given():
    rolls = [np.zeros((32, 88), dtype=bool), np.zeros((32, 88), dtype=bool)]
    stats = voice_statistics(rolls, 4, [[(0, 4), (10, 12)], [(5, 8)]])
    assert (stats["fermatas"], stats["fermatas_per_64_steps"]) == (3, 3.0)
    assert voice_statistics(rolls, 4)["fermatas_per_64_steps"] is None
    with pytest.raises(MusicLSTMError, match="for 1 rolls, not 2"):
        voice_statistics(rolls, 4, [[(0, 4)]])


def test_top_voice_steps_and_leaps_among_its_moves():
    # top 60 -> 62 (a step) -> 62 (no move) -> 67 (a leap of 5) -> silence -> 70 -> 69 (a step) -> 65 (4: neither)
    roll = passage((48, 60), (50, 62), (40, 62), (48, 67), (), (48, 70), (48, 69), (47, 65))
    stats = voice_statistics([roll], 4)
    assert stats["top_moves"] == 4
    assert stats["top_steps_share"] == 0.5 and stats["top_leaps_share"] == 0.25


def test_no_transition_runs_from_one_roll_into_the_next():
    stats = voice_statistics([passage((60,)), passage((72, 76, 79, 84))], 4)
    assert stats["top_moves"] == 0 and stats["count_changes_per_step"] is None
    assert stats["notes_per_step"] == [0.0, 0.5, 0.0, 0.0, 0.5, 0.0]


def test_nothing_to_count_gives_zero_counts_and_no_shares():
    stats = voice_statistics([], 4)
    assert stats["steps"] == stats["chord_changes"] == stats["top_moves"] == stats["held_chords"] == 0
    assert stats["notes_per_step"] is None and stats["phrase_ends_per_64_steps"] is None
    assert stats["top_steps_share"] is None and stats["parallels_per_100_changes"] is None
