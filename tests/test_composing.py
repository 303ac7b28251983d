"""The step loop: constraints that hold, particles resampled by weight and traced back, and the same music as before."""

from __future__ import annotations

import hashlib

import pytest
from conftest import write_midi as write_notes

from musiclstm import BUNDLED_MODEL, generate, harmonize, open_composer
from musiclstm.render import write_midi

# sha256 of each piece's MIDI bytes as the code before the step loop wrote them (issue 26): the loop
# must compose the same notes, seed for seed, for generate and harmonize alike.
GENERATED = (
    "c63e8d35d4e13245d871e59e2da95c28adbc71a35cba3a14c8454dd909b0ea76",
    "4378c5c9f58023c7fdf8f589a1f4e7d27b7268f4af0d6189d8b847e4d7f831ff",
)
HARMONIZED = {  # by lookahead
    16: (
        "e57c19ea37bb2a9307fb6ab7ace0a412183830a5038f7f205c8aba0f6dbdd8a2",
        "e2b4ec41c1610a47b6af885fdf985935c9a5d4f12da0c9615e6db076ecd0ed40",
    ),
    1: (
        "b854301fbfed4e6bee80cd19defdc367a69e2ba750dcd57c42049ae9a0744291",
        "ef0091fdbf4ac6ff117bb7a12cf6115fa26dba65d778a4ba7d3dbda32918a4db",
    ),
}


@pytest.fixture(scope="module")
def bundled():
    return open_composer(BUNDLED_MODEL)


def midi_hashes(composition, tmp_path) -> tuple[str, ...]:
    tempo = composition.settings["tempo_bpm"]
    paths = [
        write_midi(roll, tmp_path / f"{n}.mid", composition.steps_per_beat, tempo)
        for n, roll in enumerate(composition.rolls)
    ]
    return tuple(hashlib.sha256(path.read_bytes()).hexdigest() for path in paths)


def test_generate_writes_the_same_midi_bytes_as_before_the_step_loop(bundled, tmp_path):
    composition = generate(bundled, seed=5, num_outputs=2, length=32)
    assert midi_hashes(composition, tmp_path) == GENERATED


@pytest.mark.parametrize("lookahead", [16, 1])
def test_harmonize_writes_the_same_midi_bytes_as_before_the_step_loop(bundled, lookahead, tmp_path):
    tune = [72, 74, 76, 72, 76, 77, 79, 79, 81, 79, 77, 76, 74, 72, 74, 72]
    melody = write_notes(tmp_path / "melody.mid", [(pitch, n * 480, (n + 1) * 480) for n, pitch in enumerate(tune)])
    composition = harmonize(melody, bundled, seed=5, num_outputs=2, lookahead=lookahead)
    assert midi_hashes(composition, tmp_path) == HARMONIZED[lookahead]
