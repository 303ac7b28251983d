"""Infilling: bars rewritten inside a piece, everything outside them kept, drafts weighed by the music after."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest
import torch

from musiclstm import MusicLSTMError, infill, midi_to_roll, open_composer
from musiclstm.cli import main
from musiclstm.composing.infilling import gap_steps, join_log_likelihood, join_nll, join_nlls, read_before
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece, top_line
from musiclstm.music.render import write_midi
from musiclstm.network.reading import as_events, open_reader, piece_features

PICKUP = Grid(4, bar_offset=4)  # a bar of 16 steps after a one-beat pickup


@pytest.fixture(scope="module")
def bundled():
    return open_composer()


@pytest.fixture(scope="module")
def chorale(bach_corpus, tmp_path_factory):
    """A real chorale of 12 bars or more, written as a MIDI file: (path, its read roll)."""
    piece = next(piece for piece in bach_corpus.pieces if len(piece.piece.bar_lines()) > 12)
    path = tmp_path_factory.mktemp("chorale") / "chorale.mid"
    write_midi(piece.roll, path, piece.grid, 100, onsets=piece.onsets)
    return path, midi_to_roll(path, 4)


def test_bars_count_from_one_on_the_pieces_metre_with_a_pickup_as_bar_one():
    piece = Piece(np.ones((40, 88), dtype=bool), grid=PICKUP)
    assert piece.bar_lines().tolist() == [0, 4, 20, 36, 40]
    assert gap_steps(piece, bars=(2, 3)) == (4, 36)
    assert gap_steps(piece, bars=(1, 1)) == (0, 4)
    assert gap_steps(piece, steps=(5, 39)) == (5, 39)


@pytest.mark.parametrize(
    ("bars", "steps", "message"),
    [
        ((0, 2), None, r"bars 0-2: outside the piece, whose bars are 1-4"),
        ((3, 5), None, r"bars 3-5: outside the piece"),
        ((3, 2), None, r"bars 3-2: an empty gap"),
        ((2**40, 5), None, r"bars 1099511627776-5: outside the piece, whose bars are 1-4$"),
        ((-(2**40), 2), None, r"bars -1099511627776-2: outside the piece, whose bars are 1-4$"),
        (None, (0, 2**40), r"steps 0-1099511627776: outside the piece, whose steps are 0-40 \(the end left out\)$"),
        (None, (8, 8), r"steps 8-8: an empty gap"),
        (None, (-1, 8), r"steps -1-8: outside the piece, whose steps are 0-40"),
        (None, (8, 41), r"outside the piece"),
        ((4, 4), None, r"bars 4-4: no music after the gap.*continuation.*generate --primer"),
        (None, (30, 40), r"no music after the gap"),
        (None, None, r"give the gap as bars"),
        ((2, 2), (4, 20), r"give the gap as bars"),
    ],
)
def test_a_gap_outside_the_piece_empty_or_with_nothing_after_it_is_refused(bars, steps, message):
    roll = np.zeros((40, 88), dtype=bool)
    roll[:36, 40] = True  # the last bar (steps 36-40) is silent
    with pytest.raises(MusicLSTMError, match=message):
        gap_steps(Piece(roll, grid=PICKUP), bars, steps)


def test_the_music_outside_the_gap_is_the_pieces_own(bundled, chorale):
    path, read = chorale
    composition = infill(path, bundled, bars="5-8", num_outputs=2, seed=4, particles=4)
    start, end = composition.gap
    assert (start, end) == tuple(read.bar_lines()[[4, 8]])
    assert composition.rolls.shape == (2, len(read.roll), 88)
    assert (composition.rolls[:, :start] == read.roll[:start]).all()
    assert (composition.rolls[:, end:] == read.roll[end:]).all()
    assert (composition.onsets[:, :start] == read.onsets[:start]).all()
    assert (composition.onsets[:, end + 1 :] == read.onsets[end + 1 :]).all()
    # at the join a key held over from Bach's bar 8 starts anew where the rewritten bar 8 does not sound it
    started = read.roll[end] & ~composition.rolls[:, end - 1]
    assert (composition.onsets[:, end] == (read.onsets[end] | started)).all()
    assert not (composition.rolls[:, start:end] == read.roll[start:end]).all()
    assert len(composition.settings["join_nll"]) == 2 and composition.settings["particles"] == 4


def test_keep_melody_keeps_every_note_of_the_gaps_top_line_on_top(bundled, chorale):
    path, read = chorale
    composition = infill(path, bundled, bars=(5, 8), keep_melody=True, num_outputs=2, seed=1, particles=2)
    start, end = composition.gap
    melody = top_line(read.roll[start:end])
    for roll in composition.rolls:
        assert (top_line(roll[start:end]) == melody).all()
    assert (top_line(composition.melody[start:end]) == melody).all() and not composition.melody[:start].any()


def test_the_weights_are_the_models_exact_likelihood_of_the_music_after_and_favour_the_draft_that_leads_into_it(
    bundled, chorale
):
    """Two drafts of bars 5-8: Bach's own, and Bach's a tritone up. The real bars after follow the first."""
    _, read = chorale
    events = as_events(read.roll, read.onsets)
    start, end = gap_steps(read, bars=(5, 8))
    own = events[:end]
    moved = own.copy()
    moved[start:end] = np.roll(own[start:end].reshape(-1, 2, 88), 6, axis=-1).reshape(-1, 176)
    n_join, model = 16, bundled.model
    given = torch.from_numpy(events[end : end + n_join])
    weigh = join_log_likelihood(model, given, end - start)
    with torch.inference_mode():
        reader = open_reader(model, np.stack([own[: end - 1], moved[: end - 1]]), "stateful", 2, read.grid)
        reader.read(torch.from_numpy(np.stack([own[end - 1], moved[end - 1]])).float())
        previous = torch.from_numpy(np.stack([own[end - 1, :88], moved[end - 1, :88]]))
        weights = torch.zeros(2, dtype=torch.float64)
        for step in range(end - start, end - start + n_join):
            weights += weigh(reader.features, step, previous)
            frame = given[step - (end - start)].expand(2, -1)
            previous = frame[:, :88]
            reader.read(frame.float())
    assert weights[0] > weights[1] + 5  # nats: Bach's own bars lead into his next ones
    for draft, weight in zip((own, moved), weights, strict=True):
        piece = np.concatenate([draft, events[end:]])
        exact = join_nll(model, piece, "stateful", read.grid, end, n_join) * n_join
        assert float(weight) == pytest.approx(-exact, abs=1e-3)


@torch.inference_mode()
def old_join_nll(model, events, context, grid, start, n_steps) -> float:
    """The join's NLL as it was scored before the state was carried: the whole piece read from step 0."""
    events = torch.as_tensor(events[: start + n_steps])
    features = torch.cat(list(piece_features(model, events.numpy(), context, grid)))[start:]
    previous = torch.cat([torch.zeros(1, 88, dtype=torch.bool), events[:-1, :88]])[start:]
    targets = torch.cat([events[start:], previous], dim=-1).float()
    return float(model.event_nll(features, targets).mean())


@pytest.mark.parametrize("context", ["stateful", "window"])
def test_the_join_scored_from_the_state_at_the_gap_is_the_join_scored_from_step_0(bundled, chorale, context):
    _, read = chorale
    events, model = as_events(read.roll, read.onsets), bundled.model
    start, end = gap_steps(read, bars=(5, 8))
    pieces = np.stack([events, events])
    pieces[1, start:end] = np.roll(events[start:end], 5, axis=-1)  # a second version, its gap unlike the first
    carried = read_before(model, events, start, context, read.grid)
    assert (carried is None) == (context == "window")
    joins = join_nlls(model, pieces, context, read.grid, end, 16, carried)
    expected = [old_join_nll(model, piece, context, read.grid, end, 16) for piece in pieces]
    assert joins == pytest.approx(expected, abs=1e-5) and abs(joins[0] - joins[1]) > 0.1


def test_infill_reads_the_music_before_the_gap_once_for_every_version_and_draft(bundled, chorale, monkeypatch):
    """The steps the LSTM reads grow with the versions times the gap and join, not with the piece."""
    path, read = chorale
    model, read_steps = bundled.model, []
    recur = model.recur

    def counting(rolls, state=None):
        read_steps.append(rolls.shape[1])
        return recur(rolls, state)

    monkeypatch.setattr(model, "recur", counting)
    start, end = gap_steps(read, bars=(9, 9))
    composition = infill(path, bundled, bars=(9, 9), num_outputs=3, particles=4, join_steps=8, seed=0)
    window, gap_and_join = model.config.window, end - start + 8
    assert len(composition.pieces) == 3
    # the lead-in and the piece before the gap once; the drafts a step a call; the join's scoring one call
    assert sum(read_steps) <= window + start + 2 * gap_and_join < window + 2 * start


def test_one_draft_by_threshold_and_the_join_cut_where_the_piece_ends(bundled, chorale):
    path, read = chorale
    bounds = read.bar_lines()
    last = len(bounds) - 2  # the last bar but one: the join is the last bar, shorter than asked
    composition = infill(path, bundled, bars=(last - 1, last - 1), choose="threshold", join_steps=64, seed=0)
    assert composition.settings["particles"] == 1
    assert composition.settings["join_steps"] == len(read.roll) - int(bounds[last - 1])


def test_infill_by_threshold_says_its_pieces_are_the_same_and_its_drafts_are_one(bundled, chorale, caplog):
    path, _ = chorale
    with caplog.at_level(logging.WARNING):
        composition = infill(path, bundled, bars="5-6", choose="threshold", num_outputs=3, particles=16, seed=0)
    assert (
        "choosing by threshold is deterministic: the 3 pieces share the music around the gap and will be the same; "
        "use --choose sample for different pieces" in caplog.text
    )
    assert "the 16 drafts of the gap would all be the same, so one is drawn (particles 1)" in caplog.text
    assert composition.settings["particles"] == 1
    assert (composition.rolls[0] == composition.rolls[1]).all() and (composition.rolls[1] == composition.rolls[2]).all()


def test_infill_by_sampling_says_nothing_of_the_kind(bundled, chorale, caplog):
    path, _ = chorale
    with caplog.at_level(logging.WARNING):
        infill(path, bundled, bars="5-5", choose="sample", num_outputs=2, particles=2, seed=0)
    assert "deterministic" not in caplog.text


def test_api_and_cli_agree_seed_for_seed_and_the_files_say_where_the_gap_is(bundled, chorale, tmp_path, capsys):
    path, read = chorale
    composition = infill(path, None, bars="5-8", seed=9, particles=3, join_steps=8)
    code = main(["infill", str(path), "--bars", "5-8", "--seed", "9", "--particles", "3", "--join", "8",
                 "--out", str(tmp_path), "--no-audio"])  # fmt: skip
    assert code == 0 and "rewritten; join NLL" in capsys.readouterr().out
    written = midi_to_roll(tmp_path / "piece_1.mid", 4)
    assert (written.roll == composition.rolls[0]).all()
    record = json.loads((tmp_path / "piece_1.json").read_text())
    assert record["gap"] == {
        "steps": list(composition.gap),
        "bars": [5, 8],
        "particles": 3,
        "join_steps": 8,
        "join_nll": composition.settings["join_nll"][0],
    }
    assert record["statistics"]["steps"] == composition.gap[1] - composition.gap[0]
    assert (tmp_path / "piece_1.png").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--bars", "30-31"], "bars 30-31: outside the piece, whose bars are 1-"),
        (["--bars", "8-5"], "bars 8-5: an empty gap"),
        (["--steps", "{before_end}-{end}"], "no music after the gap.*generate --primer"),  # the last 8 steps
        (["--bars", "five"], "bars 'five': a badly written range; write two whole numbers, FIRST-LAST, like 5-8"),
        (["--bars", "5--8"], "bars '5--8': a badly written range"),
        (["--bars", "5-8-9"], "bars '5-8-9': a badly written range"),
        (["--steps", "64-"], "steps '64-': a badly written range; write two whole numbers, FIRST-LAST, like 64-128"),
        (["--bars", "99999999999-5"], r"bars 99999999999-5: outside the piece, whose bars are 1-\d+$"),
        (["--bars", "5-8", "--join", "0"], r"join_steps \(--join\) must be from 1 to 1,024, got 0$"),
        ([], "give the gap as --bars"),
    ],
)
def test_a_bad_gap_is_one_line_and_exit_2_before_any_file_is_written(chorale, tmp_path, capsys, flags, message):
    path, read = chorale
    flags = [flag.format(before_end=len(read.roll) - 8, end=len(read.roll)) for flag in flags]
    code = main(["infill", str(path), *flags, "--out", str(tmp_path / "out"), "--no-audio"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1
    assert error.startswith("musiclstm: error:")
    assert re.search(message, error)
    assert not (tmp_path / "out").exists()


class Upload:
    """What Streamlit's file_uploader hands the studio: a name, a size and the bytes."""

    def __init__(self, name: str, data: bytes):
        self.name, self.size, self.data = name, len(data), data

    def getvalue(self) -> bytes:
        return self.data


def test_the_studios_rewrite_mode_keeps_the_piece_outside_the_bars_and_asks_for_a_piece_when_missing(chorale, tmp_path):
    from musiclstm import BUNDLED_MODEL
    from musiclstm.pages.studio import compose

    path, read = chorale
    settings = dict(bars=16, seed=2, rewrite_bars=(5, 8))
    piece = compose(str(BUNDLED_MODEL), settings, Upload("chorale.mid", path.read_bytes()))
    start, end = piece["rewritten"]["steps"]
    (tmp_path / "made.mid").write_bytes(piece["files"]["midi"])
    made = midi_to_roll(tmp_path / "made.mid", 4).roll
    assert (made[:start] == read.roll[:start]).all() and (made[end:] == read.roll[end:]).all()
    assert piece["rewritten"]["bars"] == [5, 8] and piece["files"]["png"].startswith(b"\x89PNG")
    assert piece["statistics"]["note_density"] == pytest.approx(made[start:end].sum(1).mean())  # the gap's
    with pytest.raises(MusicLSTMError, match="Upload a piece"):
        compose(str(BUNDLED_MODEL), settings, None)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(particles=0), "particles"),
        (dict(join_steps=0), "join_steps"),
        (dict(length=64), "length: an infill's length is its gap's"),
        (dict(temperature=-1), "temperature"),
        (dict(colour="red"), "unknown generation setting: colour"),
        (dict(bars=(5.5, 8)), "bars"),
        (dict(piece=3), "piece must be a MIDI file's path"),
    ],
)
def test_infill_refuses_a_bad_argument_by_name(chorale, arguments, message):
    path, _ = chorale
    with pytest.raises(MusicLSTMError, match=message):
        infill(**{"piece": path, "bars": "5-8", **arguments})


def test_a_gap_at_the_very_start_is_drawn_from_silence_and_joins_the_rest(bundled, chorale):
    path, read = chorale
    composition = infill(path, bundled, bars="1-2", seed=5, particles=2)
    start, end = composition.gap
    assert (start, end) == tuple(read.bar_lines()[[0, 2]]) and start == 0
    assert (composition.rolls[0, end:] == read.roll[end:]).all() and composition.rolls[0, :end].any()


def test_the_studio_offers_rewrite_bars_with_the_bars_to_choose_and_asks_for_a_piece(monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    import musiclstm

    monkeypatch.delenv("MUSICLSTM_MODEL", raising=False)
    monkeypatch.setenv("MUSICLSTM_RUNS", str(tmp_path))
    page = AppTest.from_file(musiclstm.STUDIO_PAGE, default_timeout=120).run()
    page.radio(key="mode").set_value("Rewrite bars").run()
    assert page.number_input(key="first_bar").value == 5 and page.number_input(key="last_bar").value == 8
    assert page.slider(key="bars").disabled
    page.button[0].click().run()
    assert not page.exception and page.error[0].value == "Upload a piece (a MIDI file) whose bars to rewrite."
