"""Keys struck again: the strike head's exact factor of each step's probability, drawn, composed and written."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pretty_midi
import pytest
import torch

from musiclstm.composing.composer import Composition
from musiclstm.composing.loop import StepPlan, compose
from musiclstm.composing.saving import save_pieces
from musiclstm.config import MODEL_PRESETS, N_KEYS
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece, roll_to_notes
from musiclstm.network.heads import DrawRules, NadeHead, StrikeHead
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import as_events, step_targets

KEYS = 4
ALL_FRAMES = torch.tensor(list(itertools.product([0.0, 1.0], repeat=KEYS)))  # (16, 4)


def small_heads() -> tuple[NadeHead, StrikeHead, torch.Tensor]:
    """A NADE head and a strike head over 4 keys (a test-only size: every step can be listed), and 2 feature rows."""
    torch.manual_seed(0)
    head, strikes = NadeHead(5, 7, keys=KEYS), StrikeHead(5, keys=KEYS)
    with torch.no_grad():
        head.key_bias.bias.normal_()
        strikes.from_keys.weight.normal_()  # a chord's keys struck together: the strikes depend on the keys
    return head, strikes, torch.randn(2, 5)


@torch.no_grad()
@pytest.mark.parametrize("previous", [[0, 0, 0, 0], [1, 0, 1, 1], [1, 1, 1, 1]])
def test_the_probabilities_of_every_sounding_and_struck_step_sum_to_one(previous):
    head, strikes, features = small_heads()
    previous = torch.tensor(previous, dtype=torch.float32)
    for row in features:
        total = 0.0
        for keys in ALL_FRAMES:
            held_over = (keys * previous).bool()
            sound_nll = head.frame_nll(row, keys)
            for choice in itertools.product([0.0, 1.0], repeat=int(held_over.sum())):
                struck = keys * (1 - previous)  # a key that starts to sound is struck
                struck[held_over] = torch.tensor(choice)
                total += math.exp(-float(sound_nll + strikes.strike_nll(row, keys, struck, previous)))
        assert total == pytest.approx(1.0, abs=1e-6)  # float32 logits


def test_the_strike_head_leaves_the_sounding_keys_likelihood_exact_and_adds_its_own():
    model = MusicLSTM(replace(MODEL_PRESETS["small"], head="nade", nade_units=8))
    roll = np.zeros((6, N_KEYS), dtype=bool)
    roll[:, 40] = True
    onsets = np.zeros_like(roll)
    onsets[[0, 2, 4], 40] = True  # one key struck three times, held between
    targets = step_targets(torch.from_numpy(np.pad(as_events(roll, onsets), [(1, 0), (0, 0)]).astype(np.float32)))
    features = torch.randn(6, model.config.dense_units)
    with torch.no_grad():
        sound = model.frame_nll(features, targets)
        whole = model.event_nll(features, targets)
    previous = torch.from_numpy(np.pad(roll, [(1, 0), (0, 0)])[:-1]).float()  # silence before the first step
    head_input = model.head_input(features, previous)
    assert torch.allclose(sound, model.head.frame_nll(head_input, torch.from_numpy(roll).float()))
    assert (whole[1:] > sound[1:]).all()  # the held-over steps add their strike decisions
    assert whole[0] == pytest.approx(float(sound[0]))  # the first step's key starts to sound: nothing to decide


def test_a_composed_key_struck_again_is_a_separate_note_in_the_midi_file(tmp_path):
    model = MusicLSTM(MODEL_PRESETS["small"])
    with torch.no_grad():
        model.strikes.from_features.bias.fill_(20.0)  # every held-over key struck again
        model.head.bias.fill_(-20.0)
        model.head.bias[39] = 20.0  # one key, always sounding
    plan = StepPlan(1, 8, DrawRules(choose="threshold"))
    primer = as_events(np.zeros((1, N_KEYS), dtype=bool))
    events = compose(model, primer, "stateful", plan, seed=0).numpy()
    roll, onsets = events[..., :N_KEYS], events[..., N_KEYS:]
    assert roll[0, :, 39].all() and onsets[0, :, 39].all()
    composition = Composition((Piece(roll[0], onsets[0], Grid(4)),), 0, {}, ("none",), ("C",))
    (entry,) = save_pieces(composition, tmp_path / "out", audio=False)
    notes = pretty_midi.PrettyMIDI(entry["files"]["midi"]).instruments[0].notes
    assert len(notes) == 8 == len(roll_to_notes(roll[0], onsets[0]))  # eight struck notes, not one held
    assert len(roll_to_notes(roll[0])) == 1


def test_a_run_folder_from_before_strikes_and_the_metre_loads_and_composes_as_it_did(bach_corpus, tmp_path):
    import json

    from musiclstm import TrainConfig, generate, train
    from musiclstm.judging.evaluation import evaluate_model
    from musiclstm.network.run import load_model

    old_network = replace(MODEL_PRESETS["small"], inputs=("keys",), strikes=False)
    train(bach_corpus.path, tmp_path / "run", old_network, TrainConfig(epochs=1, chunk=32))
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    for setting in ("inputs", "strikes"):  # a config.json written before these settings existed
        del config["model"][setting]
    config_path.write_text(json.dumps(config))
    model = load_model(tmp_path / "run")
    assert model.config.inputs == ("keys",) and model.strikes is None and model.lstm1.input_size == N_KEYS
    report = evaluate_model(model, bach_corpus, "test", "stateful")
    assert np.isfinite(report["nll"]) and report["event_nll"] is None
    composition = generate(tmp_path / "run", length=32, num_outputs=2, seed=4, choose="sample")
    continuation = slice(composition.primer_steps, None)
    turning_on = as_events(composition.rolls[:, continuation])[..., N_KEYS:]
    assert np.array_equal(composition.onsets[:, continuation][:, 1:], turning_on[:, 1:])  # no key struck again


def test_the_keys_turning_on_are_found_along_each_pieces_steps_in_a_batch():
    rolls = np.zeros((2, 3, N_KEYS), dtype=bool)
    rolls[0, :, 5] = True
    rolls[1, 1:, 7] = True
    struck = as_events(rolls)[..., N_KEYS:]
    assert struck[0, :, 5].tolist() == [True, False, False] and struck[1, :, 7].tolist() == [False, True, False]
