"""Every bad argument of generate and harmonize is a MusicLSTMError that names it, refused before any work."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import write_midi

from musiclstm import MusicLSTMError, generate, harmonize
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
