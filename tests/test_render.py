"""Rolls into things to hear and see: MIDI with tempo and accents, WAV audio, pictures, and each piece's JSON."""

from __future__ import annotations

import json
import wave

import numpy as np
import pytest

from musiclstm import MusicLSTMError, generate, save_pieces
from musiclstm.music.grid import Grid
from musiclstm.music.roll import load_midi, midi_to_roll


def test_saved_pieces_read_back_as_the_generated_rolls_with_audio_picture_and_settings(trained_runs, tmp_path):
    composition = generate(trained_runs["all"], length=32, num_outputs=2, seed=4)
    pieces = save_pieces(composition, tmp_path, tempo_bpm=96)
    for roll, piece in zip(composition.rolls, pieces, strict=True):
        files = piece["files"]
        assert np.array_equal(midi_to_roll(files["midi"], composition.grid(0).steps_per_beat).roll, roll)
        midi = load_midi(files["midi"])
        assert midi.get_tempo_changes()[1][0] == pytest.approx(96)
        assert [(ts.numerator, ts.denominator) for ts in midi.time_signature_changes] == [(4, 4)]
        with wave.open(files["wav"]) as audio:
            assert audio.getframerate() == 44100
            samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2")
        assert np.sqrt(np.mean(samples.astype(float) ** 2)) > 100  # not silent
        with open(files["png"], "rb") as picture:
            assert picture.read(8) == b"\x89PNG\r\n\x1a\n"
        saved = json.loads(open(files["json"]).read())
        assert saved["settings"]["seed"] == 4 and saved["statistics"]["steps"] == 32


def test_downbeats_are_played_louder_than_offbeats(tmp_path):
    from musiclstm.music.render import write_midi as write_piece

    roll = np.zeros((17, 88), dtype=bool)
    roll[0, 39] = roll[4, 39] = roll[6, 39] = roll[16, 39] = True
    midi = load_midi(write_piece(roll, tmp_path / "accents.mid", Grid(4)))
    velocities = [note.velocity for note in sorted(midi.instruments[0].notes, key=lambda note: note.start)]
    assert velocities[0] == velocities[3] > velocities[1] > velocities[2]


def test_audio_falls_back_to_pretty_midi_with_a_warning_where_fluidsynth_is_missing(tmp_path, monkeypatch, caplog):
    import shutil

    from musiclstm.music import render
    from musiclstm.music.render import render_audio
    from musiclstm.music.render import write_midi as write_piece

    roll = np.zeros((16, 88), dtype=bool)
    roll[:8, 39] = True
    midi = write_piece(roll, tmp_path / "c.mid", Grid(4))
    if shutil.which("fluidsynth"):
        assert render_audio(midi, tmp_path / "fluid.wav") == "fluidsynth"
    monkeypatch.setattr(render.shutil, "which", lambda name: None)
    assert render_audio(midi, tmp_path / "sine.wav") == "pretty_midi"
    assert "FluidSynth is not installed" in caplog.text
    with wave.open(str(tmp_path / "sine.wav")) as audio:
        assert audio.getframerate() == 44100 and audio.getnframes() > 44100 // 2
    with pytest.raises(MusicLSTMError, match="nothing.sf2: SoundFont not found"):
        render_audio(midi, tmp_path / "x.wav", soundfont=tmp_path / "nothing.sf2")


def test_a_folder_of_earlier_pieces_is_refused_before_composing_and_replaced_whole_with_force(tmp_path, capsys):
    from musiclstm.cli import main

    out = tmp_path / "out"
    assert (
        main(["generate", "--out", str(out), "--num-outputs", "3", "--length", "8", "--no-audio", "--seed", "1"]) == 0
    )
    first = {path.name: path.read_bytes() for path in out.iterdir()}
    assert main(["generate", "--out", str(out), "--length", "8", "--no-audio"]) == 2
    assert "already holds the pieces of another run" in capsys.readouterr().err
    assert {path.name: path.read_bytes() for path in out.iterdir()} == first  # untouched
    assert main(["generate", "--out", str(out), "--length", "8", "--no-audio", "--seed", "2", "--force"]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["piece_1.json", "piece_1.mid", "piece_1.png"]
    assert json.loads((out / "piece_1.json").read_text())["settings"]["seed"] == 2
    with pytest.raises(MusicLSTMError, match="already holds the pieces"):
        save_pieces(generate(length=4, seed=0), out)
