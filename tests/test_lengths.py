"""Long pieces and long primers: written so that every reader reads them back, read through the LSTM in
bounded chunks, and refused by name where they must stop, before any work.

oneDNN's LSTM kernel fails past about 262,000 steps in one call at 512 units, and reading a primer that
long takes the seed-size model from half a minute to several on a shared 2-core CPU. So these tests
patch ROWS_PER_CALL down to LIMIT, make a longer call fail as the kernel does, and read primers a few
times LIMIT long; `benchmarks/bench_lengths.py` measures a 300,000-step primer at the real limit.
"""

from __future__ import annotations

import json

import mido
import numpy as np
import pretty_midi
import pytest
import torch
from conftest import write_midi

from musiclstm import midi_to_roll
from musiclstm.cli import main
from musiclstm.config import MAX_LENGTH
from musiclstm.music.grid import MAX_ROLL_STEPS
from musiclstm.network import model as model_module

LIMIT = 128  # batch rows x steps per LSTM call, patched in for ROWS_PER_CALL (8,192)
PAST_THE_LIMIT = 800  # steps: 7 calls of at most LIMIT at batch 1 with the lead-in, as 300,000 steps are 37 of 8,192
PAST_AN_HOUR = 5_000  # steps: at 4 per beat and 20 beats per minute (the slowest tempo), over the hour of audio


@pytest.fixture
def lstm_calls(monkeypatch) -> list[tuple[int, int]]:
    """The (batch, steps) of every sequence LSTM call from here on, with ROWS_PER_CALL patched down to LIMIT
    and a call past LIMIT batch rows x steps failing, as oneDNN's kernel fails past its own limit."""
    monkeypatch.setattr(model_module, "ROWS_PER_CALL", LIMIT)
    calls, forward = [], torch.nn.LSTM.forward

    def bounded(lstm, inputs, state=None):
        calls.append(tuple(inputs.shape[:2]))
        if inputs.shape[0] * inputs.shape[1] > LIMIT:
            raise RuntimeError("could not create a primitive descriptor for the LSTM forward propagation primitive")
        return forward(lstm, inputs, state)

    monkeypatch.setattr(torch.nn.LSTM, "forward", bounded)
    return calls


def long_primer(path, steps: int):
    """A MIDI file of a few dozen bytes: one note, `steps` steps of silence (at 4 per beat), one note."""
    beats, ticks = steps // 4, 24
    return write_midi(path, [(60, 0, 6), (64, beats * ticks, beats * ticks + 6)], ticks_per_beat=ticks)


def test_a_piece_of_the_longest_length_is_read_back_by_musiclstm_pretty_midi_and_mido(
    trained_runs, tmp_path, capsys, caplog
):
    pieces = tmp_path / "pieces"
    assert (
        main(["generate", "--model", str(trained_runs["all"]), "--length", str(MAX_LENGTH), "--out", str(pieces)]) == 0
    )
    error = caplog.text  # the warning, logged
    assert "piece_1: no WAV written: 4 h 1" in error and "over the 1 h 00 min limit for audio" in error
    record = json.loads((pieces / "piece_1.json").read_text())
    assert "limit for audio" in record["files"]["no_audio"] and not (pieces / "piece_1.wav").exists()
    midi = pieces / "piece_1.mid"
    steps = record["primer_steps"] + MAX_LENGTH
    assert len(midi_to_roll(midi, 4).roll) == steps
    assert pretty_midi.PrettyMIDI(str(midi)).get_end_time() == pytest.approx(steps * 60 / (4 * 100), rel=1e-6)
    assert mido.MidiFile(midi).length == pytest.approx(steps * 60 / (4 * 100), rel=1e-6)
    assert main(["render", str(midi), str(tmp_path / "piece.wav")]) == 2  # hours of audio: refused, by name
    assert "piece_1.mid: 4 h 1" in capsys.readouterr().err and not (tmp_path / "piece.wav").exists()
    again = tmp_path / "again"
    command = ["generate", "--model", str(trained_runs["all"]), "--primer", str(midi), "--length", "4"]
    # window context reads the primer's last window; reading a long primer whole is the chunk tests' business
    assert main([*command, "--context", "window", "--out", str(again), "--no-audio"]) == 0
    assert len(midi_to_roll(again / "piece_1.mid", 4).roll) == steps + 4


def test_a_primer_past_the_lstm_call_limit_is_read_in_chunks_by_the_seed_size_bundled_model(tmp_path, lstm_calls):
    primer = long_primer(tmp_path / "long.mid", PAST_THE_LIMIT)
    assert primer.stat().st_size < 100
    pieces = tmp_path / "pieces"
    command = ["generate", "--primer", str(primer), "--context", "stateful", "--length", "4", "--no-audio"]
    assert main([*command, "--out", str(pieces)]) == 0
    roll = midi_to_roll(pieces / "piece_1.mid", 4).roll
    assert len(roll) == PAST_THE_LIMIT + 1 + 4 and roll[-4:].any()
    assert sum(steps for _, steps in lstm_calls) == 2 * (64 + PAST_THE_LIMIT + 1)  # the lead-in too, by both layers
    assert max(batch * steps for batch, steps in lstm_calls) == LIMIT


def test_pieces_sharing_a_long_primer_read_it_once_and_each_go_their_own_way(trained_runs, tmp_path, lstm_calls):
    primer = long_primer(tmp_path / "long.mid", PAST_THE_LIMIT)
    pieces = tmp_path / "pieces"
    command = ["generate", "--model", str(trained_runs["all"]), "--primer", str(primer), "--context", "stateful"]
    assert (
        main(
            [*command, "--length", "8", "--num-outputs", "3", "--choose", "sample", "--no-audio", "--out", str(pieces)]
        )
        == 0
    )
    rolls = [midi_to_roll(pieces / f"piece_{number}.mid", 4).roll for number in (1, 2, 3)]
    assert (
        all(len(roll) == PAST_THE_LIMIT + 1 + 8 for roll in rolls) and len({roll[-8:].tobytes() for roll in rolls}) == 3
    )
    assert {batch for batch, _ in lstm_calls} == {1}  # the primer, read once for the three pieces


def test_a_primer_too_long_for_the_piece_limit_is_refused_by_name_before_composing(
    trained_runs, tmp_path, capsys, monkeypatch
):
    from musiclstm.composing import generation

    def no_work(*args, **kwargs):
        raise AssertionError("composing began")

    monkeypatch.setattr(generation, "compose_rolls", no_work)
    primer = long_primer(tmp_path / "longer.mid", MAX_ROLL_STEPS - 50_000)
    command = ["generate", "--model", str(trained_runs["all"]), "--primer", str(primer), "--out", str(tmp_path / "o")]
    assert main([*command, "--length", str(MAX_LENGTH)]) == 2
    assert "longer.mid: 450,001 steps long at 4 per beat; with 100,000 more" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_a_corpus_piece_past_the_lstm_call_limit_is_scored_in_chunks(trained_runs, tmp_path, lstm_calls):
    long_piece = [[60]] + [[] for _ in range(PAST_THE_LIMIT)] + [[64]]
    benchmark = tmp_path / "long.json"
    benchmark.write_text(json.dumps({"train": [[[60]]], "valid": [[[60]]], "test": [long_piece, [[60], [64], [67]]]}))
    command = ["evaluate", "--model", str(trained_runs["all"]), "--data", str(benchmark), "--split", "test"]
    assert main([*command, "--context", "stateful", "--json", str(tmp_path / "report.json")]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["frames"] == PAST_THE_LIMIT + 2 + 3 and np.isfinite(report["nll"])
    assert max(batch * steps for batch, steps in lstm_calls) == LIMIT


def test_the_studio_composes_after_a_long_primer_and_says_why_there_is_no_audio(trained_runs, tmp_path, lstm_calls):
    from musiclstm.pages.studio import compose

    class Upload:
        name = "long.mid"

        def __init__(self, data: bytes):
            self.size, self.data = len(data), data

        def getvalue(self) -> bytes:
            return self.data

    upload = Upload(long_primer(tmp_path / "long.mid", PAST_AN_HOUR).read_bytes())
    settings = dict(strategy="balanced", temperature=0.8, scale="chromatic", key="auto", bars=1, choose="sample")
    settings.update(threshold=0.5, max_notes=None, tempo_bpm=20, seed=1)
    piece = compose(str(trained_runs["all"]), settings, upload)
    assert piece["files"]["midi"].startswith(b"MThd") and "wav" not in piece["files"]
    assert "limit for audio" in piece["no_audio"] and piece["primer"] == "long.mid"
    assert max(batch * steps for batch, steps in lstm_calls) == LIMIT
