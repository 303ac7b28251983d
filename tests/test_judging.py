"""Judging generated music: the primer left out by its JSON, pieces skipped by name, held-out pieces, the verdict."""

from __future__ import annotations

import re

import numpy as np
import pytest

from musiclstm import MusicLSTMError
from musiclstm.judging import compare_generated, primer_steps, read_generated
from musiclstm.render import write_midi
from musiclstm.roll import Grid


def write_piece(folder, name: str, sidecar: str | None, steps: int = 8):
    """A generated piece of `steps` steps holding middle C, with the JSON text given beside it (none where None)."""
    roll = np.zeros((steps, 88), dtype=bool)
    roll[:, 60 - 21] = True
    path = write_midi(roll, folder / f"{name}.mid", 4)
    if sidecar is not None:
        (folder / f"{name}.json").write_text(sidecar)
    return path


@pytest.mark.parametrize(
    ("sidecar", "expected"),
    [(None, 0), ('{"made_by": "another program"}', 0), ('{"primer_steps": 0}', 0), ('{"primer_steps": 8}', 8)],
)
def test_primer_steps_is_the_jsons_or_none_for_music_from_elsewhere(tmp_path, sidecar, expected):
    assert primer_steps(write_piece(tmp_path, "piece_1", sidecar), 8) == expected


@pytest.mark.parametrize(
    ("sidecar", "reason"),
    [
        ('{"primer_steps": 9}', "gives primer_steps 9, not a whole number from 0 to 8"),
        ('{"primer_steps": true}', "gives primer_steps True, not a whole number"),
        ('{"primer_steps": 4.0}', "gives primer_steps 4.0, not a whole number"),
        ('{"primer_steps": 100000000000000000000}', "gives primer_steps 100000000000000000000, not a whole number"),
        ('{"primer_steps": null}', "gives primer_steps None, not a whole number"),
        ('{"primer_steps": 4', r"is unreadable \(Expecting"),
        ('"primer_steps"', "is a JSON str, not an object"),
    ],
)
def test_a_json_that_cannot_say_where_the_primer_ends_is_refused_by_name(tmp_path, sidecar, reason):
    path = write_piece(tmp_path, "piece_1", sidecar)
    with pytest.raises(MusicLSTMError, match="^" + re.escape(f"{path}: its piece_1.json ") + reason):
        primer_steps(path, 8)


def test_read_generated_judges_what_follows_the_primer_and_skips_a_piece_with_nothing_after_it(tmp_path, caplog):
    write_piece(tmp_path, "piece_1", '{"primer_steps": 3}')
    write_piece(tmp_path, "piece_2", '{"primer_steps": 8}')
    rolls, _, skipped = read_generated(tmp_path, Grid(4))
    assert {name: len(roll) for name, roll in rolls.items()} == {"piece_1.mid": 5}
    assert skipped == [{"name": "piece_2.mid", "reason": "no steps after its 8-step primer to judge"}]
    assert f"skipped {tmp_path / 'piece_2.mid'}: no steps after its 8-step primer" in caplog.text
    (tmp_path / "piece_1.json").write_text('{"primer_steps": 8}')
    with pytest.raises(MusicLSTMError, match="nothing to judge, no .mid file with steps of its own to read"):
        read_generated(tmp_path, Grid(4))


def test_evaluate_generated_reports_the_two_sample_accuracy(bach_corpus, tmp_path):
    rng = np.random.default_rng(1)
    for number in range(6):
        write_midi(rng.random((128, 88)) < 4 / 88, tmp_path / f"noise_{number}.mid", bach_corpus.steps_per_beat)
    judged = compare_generated(tmp_path, bach_corpus, "test")
    assert judged["two_sample_accuracy"] == judged["two_sample"]["accuracy"] >= 0.9


def test_held_out_pieces_are_the_test_split_else_the_valid_split(bach_corpus):
    from dataclasses import replace

    assert bach_corpus.held_out() == bach_corpus.split("test") != []
    without_test = [replace(piece, split="valid") if piece.split == "test" else piece for piece in bach_corpus.pieces]
    held_out = replace(bach_corpus, pieces=without_test).held_out()
    assert [piece.name for piece in held_out] == [piece.name for piece in bach_corpus if piece.split != "train"]
