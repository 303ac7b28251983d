"""Harmonizing a melody: its line kept on top, nothing above it, voices drawn below by either head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from musiclstm import BUNDLED_MODEL, MusicLSTMError, harmonize, midi_to_roll, open_composer
from musiclstm.cli import main
from musiclstm.generation import open_reader
from musiclstm.harmonization import line_roll, melody_limits
from musiclstm.render import write_midi
from musiclstm.roll import top_line

STEPS_PER_BEAT = 4


def test_the_top_line_is_the_highest_sounding_key_and_minus_one_at_a_rest():
    roll = np.zeros((4, 88), dtype=bool)
    roll[0, [10, 30]] = True
    roll[1, 5] = True
    roll[3, [0, 87]] = True
    assert top_line(roll).tolist() == [30, 5, -1, 87]
    assert np.array_equal(line_roll(top_line(roll)), roll & (np.arange(88) == top_line(roll)[:, None]))


def test_the_melody_is_forced_and_nothing_may_sound_above_it_nor_above_its_last_note_at_a_rest():
    forced, below = melody_limits(np.array([-1, 40, -1, 35]))
    assert forced.sum(1).tolist() == [0, 1, 0, 1] and forced[1, 40] and forced[3, 35]
    assert [int(row.nonzero().max()) for row in below] == [40, 40, 40, 35]  # before the first note: its key
    with pytest.raises(MusicLSTMError, match="the melody has no notes"):
        melody_limits(np.array([-1, -1]))


def chorale_melody(bach_corpus, path, steps: int = 48):
    """The top line of the opening of a held-out chorale, written as a MIDI file of its own."""
    melody = line_roll(top_line(bach_corpus.split("test")[0].roll[:steps]))
    write_midi(melody, path, STEPS_PER_BEAT)
    return top_line(melody)


@pytest.mark.parametrize(
    ("model", "settings"),
    [
        ("bundled", dict(num_outputs=3, seed=2, lookahead=4)),  # NADE, high-to-low, sampled, with lookahead
        ("bundled", dict(num_outputs=2, seed=5, choose="threshold", strategy="free")),
        ("independent", dict(num_outputs=2, seed=1, choose="sample", max_notes=3)),
    ],
)
def test_every_melody_note_is_kept_and_nothing_sounds_above_it(model, settings, trained_runs, bach_corpus, tmp_path):
    line = chorale_melody(bach_corpus, tmp_path / "melody.mid")
    folder = BUNDLED_MODEL if model == "bundled" else trained_runs["all"]
    composition = harmonize(tmp_path / "melody.mid", folder, **settings)
    assert composition.rolls.shape == (settings["num_outputs"], len(line), 88)
    for roll in composition.rolls:
        assert np.array_equal(top_line(roll), line)
        assert roll.sum(1).max() <= settings.get("max_notes", 88)
    assert np.array_equal(composition.melody, line_roll(line))
    assert composition.settings["harmonized"] == str(tmp_path / "melody.mid")
    if model == "bundled":
        assert composition.rolls.sum(2).mean() > 2  # voices below the melody, not the melody alone


def test_a_polyphonic_file_gives_its_top_line_and_length_cuts_it(bach_corpus, tmp_path):
    chorale = bach_corpus.split("test")[0].roll[:64]
    write_midi(chorale, tmp_path / "chorale.mid", STEPS_PER_BEAT)
    composition = harmonize(tmp_path / "chorale.mid", length=32, seed=1)
    assert np.array_equal(top_line(composition.rolls[0]), top_line(chorale[:32]))


def test_harmonize_names_a_file_without_notes_or_a_bad_lookahead(tmp_path):
    write_midi(np.zeros((16, 88), dtype=bool), tmp_path / "silent.mid", STEPS_PER_BEAT)
    with pytest.raises(MusicLSTMError, match="silent.mid: no notes on the 88 keys to harmonize"):
        harmonize(tmp_path / "silent.mid")
    (tmp_path / "text.mid").write_text("not music")
    with pytest.raises(MusicLSTMError, match="text.mid: not a MIDI file"):
        harmonize(tmp_path / "text.mid")
    with pytest.raises(MusicLSTMError, match="lookahead must be between 1 and 256"):
        harmonize(tmp_path / "silent.mid", lookahead=0)


@pytest.mark.parametrize(("context", "batch"), [("stateful", 3), ("window", 3), ("window", 1)])
def test_a_reader_resampled_goes_on_as_if_its_chosen_rows_had_been_read_alone(context, batch, trained_runs):
    model = open_composer(trained_runs["all"]).model.eval()
    torch.manual_seed(0)
    frames = torch.rand(batch, 70, 88) < 0.05
    rows = torch.tensor([batch - 1] * batch)
    with torch.inference_mode():
        reader = open_reader(model, frames[:, :66].float(), context, batch)
        reader.select(rows)
        reader.read(frames[rows, 66].float())
        alone = open_reader(model, frames[rows, :67].float(), context, batch)
    assert torch.allclose(reader.features, alone.features, atol=1e-5)


def test_the_harmonize_command_writes_the_pieces_with_the_melody_on_top(bach_corpus, tmp_path, capsys):
    line = chorale_melody(bach_corpus, tmp_path / "melody.mid", steps=32)
    out = tmp_path / "out"
    command = ["harmonize", str(tmp_path / "melody.mid"), "--out", str(out), "--num-outputs", "2", "--seed", "3"]
    assert main([*command, "--no-audio", "--lookahead", "2"]) == 0
    assert "Wrote 2 piece(s)" in capsys.readouterr().out
    for number in (1, 2):
        roll = midi_to_roll(out / f"piece_{number}.mid", STEPS_PER_BEAT).roll
        assert np.array_equal(top_line(roll)[: len(line)], line)
        record = json.loads((out / f"piece_{number}.json").read_text())
        assert record["settings"]["lookahead"] == 2 and record["primer_steps"] == 0
        assert (out / f"piece_{number}.png").read_bytes().startswith(b"\x89PNG")
    assert main(["harmonize", str(tmp_path / "nowhere.mid"), "--out", str(tmp_path / "x")]) == 2
    assert "nowhere.mid" in capsys.readouterr().err
