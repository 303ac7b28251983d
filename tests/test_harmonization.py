"""Harmonizing a melody: its line kept on top, nothing above it, voices drawn below by either head."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from conftest import write_midi as write_notes

from musiclstm import BUNDLED_MODEL, MusicLSTMError, harmonize, midi_to_roll, open_composer
from musiclstm.cli import main
from musiclstm.composing.melody import line_roll, melody_limits
from musiclstm.music.piece import top_line
from musiclstm.music.render import write_midi
from musiclstm.network.reading import as_events, open_reader

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
    assert not below[0].any()  # before the first note: nothing
    assert [int(row.nonzero().max()) for row in below[1:]] == [40, 40, 35]
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
    with pytest.raises(MusicLSTMError, match="lookahead must be from 1 to 256"):
        harmonize(tmp_path / "silent.mid", lookahead=0)


@pytest.mark.parametrize(("context", "batch"), [("stateful", 3), ("window", 3), ("window", 1)])
def test_a_reader_resampled_goes_on_as_if_its_chosen_rows_had_been_read_alone(context, batch, trained_runs):
    model = open_composer(trained_runs["all"]).model.eval()
    torch.manual_seed(0)
    frames = torch.from_numpy(as_events((torch.rand(batch, 70, 88) < 0.05).numpy()))
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


TICKS_PER_STEP = 120  # conftest's files: 480 ticks per beat


def late_melody(path, silent_steps: int, tempo_bpm: float = 90):
    """Eight quarter notes after `silent_steps` steps of silence, and two notes off the keyboard beside the first."""
    start = silent_steps * TICKS_PER_STEP
    notes = [(72 - n % 3, start + n * 480, start + (n + 1) * 480) for n in range(8)]
    notes += [(12, start, start + 480), (120, start, start + 480)]
    return write_notes(path, notes, tempo_changes=((0, tempo_bpm),))


@pytest.fixture(scope="module")
def bundled():
    """The bundled model, opened once: its training passages are hashed once for every test's novelty."""
    return open_composer(BUNDLED_MODEL)


def test_harmonize_leaves_out_silent_bars_and_says_what_it_left_out(bundled, tmp_path, caplog):
    melody = late_melody(tmp_path / "late.mid", silent_steps=2_002)
    with caplog.at_level(logging.WARNING):
        composition = harmonize(melody, bundled, length=40, seed=1, lookahead=2)
    said = caplog.text
    assert "late.mid: 2 notes off the 88 keys (below A0 or above C8) are left out" in said
    assert "first note is at step 2,002; the 2,000 silent steps (125 bars) before its bar are left out" in said
    assert "late.mid: length 40 is past the melody's end: cut to 34 steps" in said
    (roll,) = composition.rolls
    assert roll.shape == (34, 88) and not roll[:2].any() and roll[2:].any(axis=1).all()  # silence before the melody
    assert top_line(roll)[2] == 72 - 21


@pytest.mark.parametrize(
    ("file_tempo", "given", "tempo", "recorded"),
    [
        (90, {}, 90.0, "the melody's tempo at its first note"),
        (600, {}, 400.0, "the melody's tempo at its first note (600 bpm, brought within 20-400)"),
        (90, {"tempo_bpm": 120}, 120.0, None),
    ],
)
def test_harmonize_takes_the_melody_files_tempo_unless_one_is_given(
    bundled, tmp_path, file_tempo, given, tempo, recorded
):
    melody = late_melody(tmp_path / "melody.mid", silent_steps=0, tempo_bpm=file_tempo)
    composition = harmonize(melody, bundled, length=8, seed=1, lookahead=1, **given)
    assert composition.settings["tempo_bpm"] == tempo
    assert composition.settings.get("tempo_from") == recorded


def test_a_melody_note_struck_again_stays_its_own_note_on_top(trained_runs, tmp_path):
    ode = [64, 64, 65, 67, 67, 65, 64, 62]  # E E F G | G F E D: each note struck, no gap between
    melody = write_notes(tmp_path / "ode.mid", [(pitch, n * 480, (n + 1) * 480) for n, pitch in enumerate(ode)])
    composition = harmonize(melody, trained_runs["all"], seed=1, num_outputs=1, lookahead=1)
    path = write_midi(
        composition.rolls[0], tmp_path / "out.mid", composition.grid(0), 100, onsets=composition.onsets[0]
    )
    written = midi_to_roll(path, STEPS_PER_BEAT)
    top = top_line(written.roll)
    starts = [step for step in range(len(top)) if written.onsets[step, top[step]]]
    assert [int(top[step]) + 21 for step in starts] == ode and starts == list(range(0, 32, 4))
