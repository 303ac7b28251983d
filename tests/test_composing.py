"""The step loop: constraints that hold, particles resampled by weight and traced back, and the same music as before."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import write_midi as write_notes

from musiclstm import BUNDLED_MODEL, ModelConfig, MusicLSTMError, generate, harmonize, infill, open_composer
from musiclstm.composing.composer import read_music
from musiclstm.composing.loop import StepPlan, compose, resample, trace_back
from musiclstm.music.render import write_midi
from musiclstm.network.heads import DrawRules
from musiclstm.network.model import MusicLSTM

# sha256 of each piece's MIDI bytes (struck notes and time signatures included) as the bundled model
# composes them: a change to the step loop that changes the music, seed for seed, must be deliberate.
GENERATED = (
    "98088a30f10dd0c2ae938312670693415c999ed045a7212d8b3d82070bb62c1f",
    "153ae76043dd85ca1546073be145ef0a8e84213e8727ff63123be03c4688e25a",
)
HARMONIZED = {  # by lookahead
    16: (
        "73c697b8c03461744b10f1c4a2f046e18f76ac5f823a5b6b9fcf2a092358ec9e",
        "00afa9613c50467838b5b2533267f7ac10af63793f0d2fac93da015b2f841288",
    ),
    1: (
        "173faecab6d6e91ad7d9328734dc91fd1e4c8cecd80137273d4416beae98285c",
        "aab43c65848cfb98deb9352838737fc63b6409c7ef13a8b50af7a264727e9329",
    ),
}
INFILLED = (  # bars 2-3 of a two-voice tune
    "21f0cc98a54c7d6054f1af68d34b5931aca2375aa53950813caa0d4e2e7e784b",
    "3ecae5205f6fa6ad3a6f79c7ffeda5039e91be016cab554416fcd65a058354c4",
)


@pytest.fixture(scope="module")
def bundled():
    return open_composer(BUNDLED_MODEL)


def midi_hashes(composition, tmp_path) -> tuple[str, ...]:
    tempo = composition.settings["tempo_bpm"]
    paths = [
        write_midi(roll, tmp_path / f"{n}.mid", composition.grid(n), tempo, onsets=composition.onsets[n])
        for n, roll in enumerate(composition.rolls)
    ]
    return tuple(hashlib.sha256(path.read_bytes()).hexdigest() for path in paths)


def test_generate_writes_the_same_midi_bytes_seed_for_seed(bundled, tmp_path):
    composition = generate(bundled, seed=5, num_outputs=2, length=32)
    assert midi_hashes(composition, tmp_path) == GENERATED


@pytest.mark.parametrize("lookahead", [16, 1])
def test_harmonize_writes_the_same_midi_bytes_seed_for_seed(bundled, lookahead, tmp_path):
    tune = [72, 74, 76, 72, 76, 77, 79, 79, 81, 79, 77, 76, 74, 72, 74, 72]
    melody = write_notes(tmp_path / "melody.mid", [(pitch, n * 480, (n + 1) * 480) for n, pitch in enumerate(tune)])
    composition = harmonize(melody, bundled, seed=5, num_outputs=2, lookahead=lookahead)
    assert midi_hashes(composition, tmp_path) == HARMONIZED[lookahead]


def test_infill_writes_the_same_midi_bytes_seed_for_seed(bundled, tmp_path):
    tune = [72, 74, 76, 72, 76, 77, 79, 79, 81, 79, 77, 76, 74, 72, 74, 72]
    bass = [48, 55, 52, 53, 48, 53, 55, 43, 53, 52, 50, 48, 55, 57, 55, 48]
    notes = [(pitch, n * 480, (n + 1) * 480) for line in (tune, bass) for n, pitch in enumerate(line)]
    piece = write_notes(tmp_path / "piece.mid", notes)
    composition = infill(piece, bundled, bars="2-3", seed=5, num_outputs=2)
    assert midi_hashes(composition, tmp_path) == INFILLED


def tiny_model(head: str) -> MusicLSTM:
    torch.manual_seed(0)
    return MusicLSTM(ModelConfig(window=8, lstm_units=16, dense_units=8, head=head, nade_units=8)).eval()


@pytest.mark.parametrize("head", ["independent", "nade"])
def test_every_step_sounds_its_forced_keys_never_a_disallowed_one_and_no_more_than_the_cap(head):
    generator = torch.Generator().manual_seed(3)
    forced = torch.zeros(12, 88, dtype=torch.bool)
    forced[torch.arange(12), torch.randint(0, 88, (12,), generator=generator)] = True
    forced[::4] = False  # some steps force nothing
    may_sound = torch.rand(12, 88, generator=generator) < 0.5
    key_masks = torch.rand(2, 88, generator=generator) < 0.7
    rules = DrawRules(temperature=3.0, allowed=key_masks, choose="sample", max_notes=3)
    plan = StepPlan(2, 12, rules, forced=forced, may_sound=may_sound, n_particles=2)
    events = compose(tiny_model(head), np.zeros((1, 0, 176), bool), "stateful", plan, seed=1, every_particle=True)
    assert events.shape == (4, 12, 176)
    pieces, struck = events[..., :88], events[..., 88:]
    assert not (struck & ~pieces).any()  # only a sounding key is struck
    assert (pieces | ~forced).all()  # forced keys sound
    permitted = (may_sound & key_masks.repeat_interleave(2, dim=0)[:, None]) | forced  # (4, 12, 88)
    assert not (pieces & ~permitted).any()
    chosen = (pieces & ~forced).sum(-1)  # the keys the model chose: the hot draw reaches the cap, never passes it
    assert chosen.max() == 3
    if head == "independent":  # the whole frame is capped, forced keys ranked first; NADE stops choosing at the cap
        assert pieces.sum(-1).max() == 3


def test_resampling_gives_every_particle_the_past_of_the_one_that_holds_all_the_weight():
    model, silence = tiny_model("independent"), np.zeros((1, 0, 176), bool)
    rules = DrawRules(temperature=2.0, choose="sample", top_k=0)
    free = StepPlan(2, 6, rules, n_particles=4)
    favoured = 2  # particle 2 of each piece alone is likely at step 4
    weighed = replace(
        free,
        log_likelihood=lambda features, step, previous: torch.where(
            torch.arange(8) % 4 == favoured, 0.0, -math.inf
        ).double(),
        weighed=[4],
    )
    apart = compose(model, silence, "stateful", free, seed=7, every_particle=True).view(2, 4, 6, 176)
    joined = compose(model, silence, "stateful", weighed, seed=7, every_particle=True).view(2, 4, 6, 176)
    assert not all(torch.equal(apart[p, 0, :4], apart[p, k, :4]) for p in range(2) for k in range(4))  # pasts differed
    for piece in range(2):  # the draws before step 4 are the same in both; after it, each particle goes on from 2's
        assert all(torch.equal(joined[piece, k, :4], apart[piece, favoured, :4]) for k in range(4))
    first = compose(model, silence, "stateful", weighed, seed=7)
    assert torch.equal(first, joined[:, 0])


def test_the_trace_back_follows_each_survivor_through_its_parents_to_its_own_past():
    frames = [torch.eye(3, 88, dtype=torch.bool).roll(step, dims=1) for step in range(3)]  # row r plays key r + step
    parents = [None, torch.tensor([2, 2, 0]), None]  # before step 1, rows 0 and 1 go on from 2, row 2 from 0
    pieces = trace_back(frames, parents, torch.tensor([0, 2]))
    assert [row.nonzero().flatten().tolist() for row in pieces[0]] == [[2], [1], [2]]
    assert [row.nonzero().flatten().tolist() for row in pieces[1]] == [[0], [3], [4]]


def test_resample_draws_only_the_particle_that_holds_all_the_weight_of_its_piece():
    log_weights = torch.tensor([[-math.inf, 0.0, -math.inf], [0.0, -math.inf, -math.inf]], dtype=torch.float64)
    assert resample(log_weights, torch.Generator().manual_seed(0)).tolist() == [1, 1, 1, 3, 3, 3]


def test_given_steps_are_read_as_they_are_by_every_particle_and_weigh_them_before_the_resampling():
    model, silence = tiny_model("independent"), np.zeros((1, 0, 176), bool)
    given = torch.zeros(2, 176, dtype=torch.bool)
    given[0, :10] = given[0, 88:98] = True  # ten keys struck: over the cap, outside the key mask
    seen = []

    def log_likelihood(features, step, previous):
        seen.append(step)
        return -model.key_nll(features, given[step - 4, :88].expand(len(features), -1).float(), previous).sum(-1)

    rules = DrawRules(allowed=torch.zeros(1, 88, dtype=torch.bool), choose="sample", max_notes=2)
    plan = StepPlan(
        1, 6, rules, n_particles=3, log_likelihood=log_likelihood, weighed=[4, 5], resampled=[5], given=given
    )
    pieces = compose(model, silence, "window", plan, seed=2, every_particle=True)
    assert torch.equal(pieces[:, 4:], given.expand(3, -1, -1)) and not pieces[:, :4].any()
    assert seen == [4, 5]


def test_a_midi_file_is_read_once_for_every_builder_its_off_keyboard_notes_counted_and_silence_refused(
    bundled, tmp_path, caplog
):
    path = write_notes(tmp_path / "low.mid", [(12, 0, 480), (60, 0, 480)])
    with caplog.at_level("WARNING"):
        read = read_music(path, "low.mid", bundled, "start from")
    assert read.roll.sum() == 4 and read.roll[:, 60 - 21].all()  # one beat of middle C at 4 steps per beat
    assert "low.mid: 1 notes off the 88 keys (below A0 or above C8) are left out" in caplog.text
    write_notes(tmp_path / "off.mid", [(12, 0, 480)])
    with pytest.raises(MusicLSTMError, match="off.mid: no notes on the 88 keys to harmonize"):
        read_music(tmp_path / "off.mid", "off.mid", bundled, "harmonize")
