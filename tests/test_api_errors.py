"""Every bad argument of the public functions (generate, harmonize, infill, midi_to_roll, roll_to_midi,
write_score) is a MusicLSTMError that names it, refused before any work; an argument that cannot act is said."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import write_midi

from musiclstm import (
    MusicLSTMError,
    generate,
    harmonize,
    infill,
    midi_to_roll,
    open_composer,
    roll_to_midi,
    write_score,
)
from musiclstm.cli import main

SETTINGS_ERRORS = [
    (dict(length=64.5), "length must be a whole number"),
    (dict(length="64"), "length must be a whole number"),
    (dict(length=True), "length must be a whole number"),
    (dict(length=0), "length must be from 1"),
    (dict(num_outputs=2.0), "num_outputs must be a whole number"),
    (dict(num_outputs=257), "num_outputs must be from 1 to 256"),
    (dict(seed="abc"), "seed must be a whole number"),
    (dict(seed=-1), "seed must be from 0 to 4,294,967,295"),
    (dict(seed=2**64), "seed must be from 0 to 4,294,967,295"),
    (dict(seed=1.5), "seed must be a whole number"),
    (dict(temperature="hot"), "temperature must be a number"),
    (dict(temperature=math.nan), "temperature must be above 0"),
    (dict(temperature=0), "temperature must be above 0"),
    (dict(temperature=math.inf), "temperature must be above 0 and finite"),
    (dict(temperature=True), "temperature must be a number"),
    (dict(threshold=1.0), "threshold must be between 0 and 1"),
    (dict(threshold=math.nan), "threshold must be between 0 and 1"),
    (dict(threshold=False), "threshold must be a number"),
    (dict(tempo_bpm="90"), "tempo must be a number"),
    (dict(tempo_bpm=math.inf), "tempo must be between 20 and 400"),
    (dict(top_k=3.0), "top_k must be a whole number"),
    (dict(top_k=89), "top_k must be from 0 to 88"),
    (dict(max_notes="4"), "max_notes must be a whole number"),
    (dict(max_notes=0), "max_notes must be from 1 to 88"),
    (dict(strategy="wild"), "unknown strategy 'wild'"),
    (dict(strategy=5), "unknown strategy 5"),
    (dict(key=5), "key must be a key name"),
    (dict(key="H"), "unknown key 'H'"),
    (dict(scale=["minor"]), r"unknown scale \['minor'\]"),
    (dict(scale="lydian"), "unknown scale 'lydian'"),
    (dict(choose="greedy"), "unknown way to choose notes 'greedy'"),
    (dict(context="all"), "unknown context 'all'"),
    (dict(precision=32), "unknown precision 32"),
    (dict(colour="blue"), "unknown generation setting: .*colour"),
]


@pytest.mark.parametrize(("arguments", "message"), SETTINGS_ERRORS)
def test_generate_refuses_a_bad_setting_by_name(arguments, message):
    with pytest.raises(MusicLSTMError, match=message):
        generate(**arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(model=123), "model must be a model folder, a Composer"),
        (dict(model=["runs/bach"]), "model must be a model folder"),
        (dict(primer=123), "primer must be a MIDI file's path"),
        (dict(primer_name=5), "primer_name must be a name"),
    ],
)
def test_generate_refuses_a_model_or_primer_that_is_no_path_by_name(arguments, message):
    with pytest.raises(MusicLSTMError, match=message):
        generate(**arguments)


@pytest.fixture(scope="module")
def melody(tmp_path_factory) -> Path:
    """Eight quarter notes around C5 at 4 steps per beat: 32 steps."""
    ticks = 480
    notes = [(72 - step % 3, step * ticks, (step + 1) * ticks) for step in range(8)]
    return write_midi(tmp_path_factory.mktemp("melody") / "melody.mid", notes)


@pytest.mark.parametrize(("arguments", "message"), SETTINGS_ERRORS)
def test_harmonize_refuses_a_bad_setting_by_name(melody, arguments, message):
    with pytest.raises(MusicLSTMError, match=message):
        harmonize(melody, **arguments)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(melody=None), "melody must be a MIDI file's path, got None"),
        (dict(melody=123), "melody must be a MIDI file's path, got 123"),
        (dict(model=123), "model must be a model folder"),
        (dict(melody_name=5), "melody_name must be a name"),
        (dict(lookahead="16"), "lookahead must be a whole number from 1 to 256, got '16'"),
        (dict(lookahead=2.0), "lookahead must be a whole number"),
        (dict(lookahead=True), "lookahead must be a whole number"),
        (dict(lookahead=0), "lookahead must be from 1 to 256, got 0"),
        (dict(lookahead=257), "lookahead must be from 1 to 256, got 257"),
    ],
)
def test_harmonize_refuses_a_melody_model_or_lookahead_of_the_wrong_kind_by_name(melody, arguments, message):
    with pytest.raises(MusicLSTMError, match=message):
        harmonize(**{"melody": melody, **arguments})


def test_harmonize_refuses_more_particles_than_the_limit_naming_it(melody):
    with pytest.raises(MusicLSTMError, match=r"num_outputs x lookahead = 256 x 256 = 65,536 particles, .* 1,024"):
        harmonize(melody, num_outputs=256, lookahead=256, choose="sample")


def test_harmonize_refuses_more_particle_steps_than_the_limit_naming_it(tmp_path):
    long_melody = write_midi(tmp_path / "long.mid", [(72, 0, 120 * 2_100)])  # one note held for 2,100 steps
    with pytest.raises(MusicLSTMError, match=r"1,024 particles .* x 2,100 steps = .* over the limit of 2,097,152"):
        harmonize(long_melody, num_outputs=64, lookahead=16, choose="sample")


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["generate", "--seed", "-1"], "seed must be from 0 to 4,294,967,295, got -1"),
        (["generate", "--seed", str(2**64)], "seed must be from 0 to 4,294,967,295"),
        (["harmonize", "MELODY", "--seed", "-5"], "seed must be from 0 to 4,294,967,295, got -5"),
        (["harmonize", "MELODY", "--length", "0"], "length must be from 1 to 100,000, got 0"),
        (["harmonize", "MELODY", "--lookahead", "0"], "lookahead must be from 1 to 256, got 0"),
    ],
)
def test_the_commands_refuse_a_bad_seed_length_or_lookahead_by_name_with_exit_2(
    melody, tmp_path, capsys, command, message
):
    command = [str(melody) if word == "MELODY" else word for word in command]
    assert main([*command, "--out", str(tmp_path / "out"), "--no-audio"]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(keep_melody="no"), "keep_melody must be True or False, got 'no'"),
        (dict(keep_melody=1), "keep_melody must be True or False, got 1"),
        (dict(keep_melody=None), "keep_melody must be True or False, got None"),
        (dict(bars=5), r"bars must be a range written like '5-8' or a pair of whole numbers like \(5, 8\), got 5$"),
        (dict(bars=(5,)), r"bars must be .* a pair of whole numbers .*, got \(5,\)"),
        (dict(bars={5, 8}), r"bars must be .* a pair of whole numbers .*, got \{(5, 8|8, 5)\}"),
        (dict(bars=(5, 8, 9)), r"bars must be .* a pair of whole numbers .*, got \(5, 8, 9\)"),
        (dict(bars=("5", "8")), r"bars must be .* a pair of whole numbers .*, got \('5', '8'\)"),
        (dict(bars=(5.5, 8)), r"bars must be .* a pair of whole numbers"),
        (dict(bars=(True, 8)), r"bars must be .* a pair of whole numbers"),
        (dict(bars="5--8"), "bars '5--8': a badly written range; write two whole numbers, FIRST-LAST, like 5-8"),
        (dict(bars="5-"), "bars '5-': a badly written range"),
        (dict(bars=None, steps=64), r"steps must be a range written like '64-128' or .* \(64, 128\), got 64"),
        (dict(bars=None, steps="64_0-128"), "steps '64_0-128': a badly written range"),
        (dict(bars=None), "give the gap as bars"),
        (dict(steps="0-8"), "give the gap as bars"),
        (dict(join_steps=0), r"join_steps \(--join\) must be from 1 to 1,024, got 0"),
        (dict(join_steps="16"), r"join_steps \(--join\) must be a whole number"),
        (dict(particles=2.0), "particles must be a whole number"),
    ],
)
def test_infill_refuses_a_bad_argument_by_name_before_reading_the_piece_or_the_model(tmp_path, arguments, message):
    """Neither the piece nor the model exists: each argument is refused before either is opened."""
    missing = dict(piece=tmp_path / "missing.mid", model=tmp_path / "no-model")
    with pytest.raises(MusicLSTMError, match=message):
        infill(**{**missing, "bars": "5-8", **arguments})


@pytest.mark.parametrize(
    ("steps_per_beat", "message"),
    [
        (0, "steps_per_beat must be from 1 to 96, got 0"),
        (-4, "steps_per_beat must be from 1 to 96, got -4"),
        ("4", "steps_per_beat must be a whole number from 1 to 96, got '4'"),
    ],
)
def test_midi_to_roll_refuses_steps_per_beat_by_name(melody, steps_per_beat, message):
    with pytest.raises(MusicLSTMError, match=message):
        midi_to_roll(melody, steps_per_beat)


def one_note_roll(fill: object = True, dtype: type = bool) -> np.ndarray:
    """A roll of 4 steps whose middle C sounds throughout as `fill` (of `dtype`); every other key 0."""
    roll = np.zeros((4, 88), dtype=dtype)
    roll[:, 60 - 21] = fill
    return roll


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(tempo_bpm=0), "tempo must be between 20 and 400 beats per minute, got 0"),
        (dict(tempo_bpm="fast"), "tempo must be a number"),
        (dict(velocity=200), "velocity must be from 1 to 127, got 200"),
        (dict(velocity=0), "velocity must be from 1 to 127, got 0"),
        (dict(velocity=90.5), "velocity must be a whole number from 1 to 127, got 90.5"),
        (dict(velocity=lambda step: 200), "velocity must be from 1 to 127, got 200"),
        (dict(program=300), "program must be from 0 to 127, got 300"),
        (dict(program=-1), "program must be from 0 to 127, got -1"),
        (dict(steps_per_beat=0), "steps_per_beat must be from 1 to 96, got 0"),
        (dict(steps_per_beat=4.0), "steps_per_beat must be a whole number"),
        (dict(roll=one_note_roll(0.3, float)), "roll must be bool, or integers 0 and 1 .*got float64"),
        (dict(roll=one_note_roll(np.nan, float)), "roll must be bool, or integers 0 and 1 .*got float64"),
        (dict(roll=one_note_roll(1.0, float)), "roll must be bool, or integers 0 and 1 .*got float64"),
        (dict(roll=one_note_roll(2, int)), "roll must be bool, or integers 0 and 1 .*got int64"),
        (dict(onsets=np.zeros((3, 88), dtype=bool)), r"onsets must have shape \(4, 88\), got \(3, 88\)"),
        (dict(onsets=one_note_roll(0.5, float)), "onsets must be bool, or integers 0 and 1"),
        (dict(grid=4), "grid must be a Grid or None"),
    ],
)
def test_roll_to_midi_refuses_a_bad_argument_by_name(arguments, message):
    with pytest.raises(MusicLSTMError, match=message):
        roll_to_midi(**{"roll": one_note_roll(), "steps_per_beat": 4, **arguments})


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (
            "Q major",
            r"unknown key 'Q major' for the score: give a root \(C, C#, D, Eb, .* B; # or b\) and a scale "
            r"\(major, minor, .*chromatic\), like 'D major', or None",
        ),  # fmt: skip
        ("D", "unknown key 'D' for the score"),
        ("D lydian", "unknown key 'D lydian' for the score"),
        (5, "unknown key 5 for the score"),
    ],
)
def test_write_score_refuses_a_key_it_cannot_write_by_name_and_writes_nothing(tmp_path, key, message):
    with pytest.raises(MusicLSTMError, match=message):
        write_score(one_note_roll(), tmp_path / "s.musicxml", 4, 90, key)
    assert not (tmp_path / "s.musicxml").exists()


def test_write_score_refuses_a_roll_of_probabilities_by_name(tmp_path):
    with pytest.raises(MusicLSTMError, match="roll must be bool, or integers 0 and 1"):
        write_score(one_note_roll(0.3, float), tmp_path / "s.musicxml", 4, 90)


def test_write_score_spells_a_flat_key_given_with_a_flat_sign_as_music21_does(tmp_path):
    from music21 import converter, key

    write_score(one_note_roll(), tmp_path / "e.musicxml", 4, 90, "e♭ major")
    signature = converter.parse(tmp_path / "e.musicxml").parts[0].recurse().getElementsByClass(key.KeySignature)
    assert signature.first().sharps == -3


def test_harmonize_by_threshold_says_its_versions_are_the_same_and_its_lookahead_is_one(melody, caplog):
    with caplog.at_level(logging.WARNING):
        composition = harmonize(melody, open_composer(), choose="threshold", lookahead=4, num_outputs=2, seed=1)
    assert "the 2 pieces share one melody and will be the same; use --choose sample" in caplog.text
    assert "the 4 harmonizations of each version would all be the same, so one is drawn (lookahead 1)" in caplog.text
    assert composition.settings["lookahead"] == 1 and (composition.rolls[0] == composition.rolls[1]).all()
