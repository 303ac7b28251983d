"""Judging generated music: the primer left out by its JSON, pieces skipped by name, held-out pieces, the verdict."""

from __future__ import annotations

import re

import numpy as np
import pytest

from musiclstm import MusicLSTMError
from musiclstm.judging.comparison import (
    compare_generated,
    format_music,
    format_rhythm,
    primer_steps,
    read_generated,
    strikes_again,
)
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece, onsets_of
from musiclstm.music.render import write_midi
from musiclstm.music.roll import roll_to_midi


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
    pieces, _, skipped = read_generated(tmp_path, Grid(4))
    assert {name: (len(piece.roll), piece.grid.bar_offset) for name, piece in pieces.items()} == {
        "piece_1.mid": (5, 13)
    }
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


def test_evaluate_generated_reports_rhythm_beside_the_real_musics_with_the_beat_kept_after_a_primer(
    bach_corpus, tmp_path
):
    beat = bach_corpus.steps_per_beat
    roll, onsets = np.zeros((4 * beat, 88), dtype=bool), np.zeros((4 * beat, 88), dtype=bool)
    roll[0, 62 - 21] = onsets[0, 62 - 21] = True  # the primer: one step of D
    for start, pitch in ((beat, 60), (2 * beat, 60), (3 * beat, 64)):  # C, C struck again, E: a beat each
        roll[start : start + beat, pitch - 21] = onsets[start, pitch - 21] = True
    roll_to_midi(roll, beat, onsets=onsets).write(str(tmp_path / "piece_1.mid"))
    (tmp_path / "piece_1.json").write_text('{"primer_steps": 1}')
    judged = compare_generated(tmp_path, bach_corpus, "test")
    generated, real = judged["generated"]["rhythm"], judged["real"]["rhythm"]
    assert generated == {
        "notes": 3,
        "steps_per_beat": beat,
        "position_unit": "sixteenth",
        "onsets_by_position": [1.0, 0.0, 0.0, 0.0],  # on the piece's beats, not 1 step before them
        "one_step_note_rate": 0.0,
        "mean_note_beats": 1.0,
        "struck_again_rate": pytest.approx(1 / 3),
    }
    assert real["steps_per_beat"] == beat and real["struck_again_rate"] is not None
    assert real["onsets_by_position"][0] > real["onsets_by_position"][1]  # chorales move on the beat
    lines = "\n".join(format_music(judged))
    assert "onsets on each sixteenth of the beat (%)" in lines and "100.0/0.0/0.0/0.0" in lines
    assert "notes struck again" in lines and "33.3%" in lines
    # C, C, E at one note a step: no 4-note step, and the top voice moves once, by 4 semitones (no step, no leap)
    assert judged["generated"]["voices"]["top_moves"] == 1 and judged["real"]["voices"]["chord_changes"] > 0
    assert "  voices " in lines
    assert row_of(lines, "4-note steps")[0] == "0.0%" and row_of(lines, "top voice leaps of 5+ semitones")[0] == "0.0%"
    assert row_of(lines, "parallel 5ths/8ves per 100 chord changes")[0] == "-"  # no chord changes to count


def row_of(lines: str, label: str) -> list[str]:
    """The generated and the real value of a table's row, by its label."""
    return next(line.split()[-2:] for line in lines.splitlines() if line.startswith(f"  {label} "))


def test_notes_are_held_runs_on_both_sides_where_no_real_piece_strikes_a_key_again():
    roll = np.zeros((4, 88), dtype=bool)
    roll[:, 39] = True
    struck_twice = onsets_of(roll)
    struck_twice[2, 39] = True
    held, repeated = Piece(roll, onsets_of(roll), Grid(4)), Piece(roll, struck_twice, Grid(4))
    assert (strikes_again(held), strikes_again(repeated)) == (False, True)  # held: as from a benchmark file


def test_the_rhythm_table_counts_by_step_where_the_grid_has_no_sixteenths_and_says_so():
    rhythm = {
        "notes": 3,
        "steps_per_beat": 3,
        "position_unit": "step",
        "onsets_by_position": [0.5, 0.25, 0.25],
        "one_step_note_rate": 0.125,
        "mean_note_beats": 0.75,
        "struck_again_rate": None,
    }
    silent = dict(rhythm, notes=0, onsets_by_position=None, one_step_note_rate=None, mean_note_beats=None)
    lines = format_rhythm({"generated": {"rhythm": silent}, "real": {"rhythm": rhythm}})
    assert lines[1].split() == "onsets on each step of the beat (%) - 50.0/25.0/25.0".split()
    assert lines[2].split() == ["one-step", "notes", "-", "12.5%"]
    assert lines[3].split()[-2:] == ["-", "0.75"] and lines[4].split()[-2:] == ["-", "-"]
    assert lines[5].startswith("  onsets by step, first step of the beat first: 3 steps per beat do not divide")
    assert lines[6].startswith("  notes struck again: unknown")


def test_held_out_pieces_are_the_test_split_else_the_valid_split(bach_corpus):
    from dataclasses import replace

    assert bach_corpus.held_out() == bach_corpus.split("test") != []
    without_test = [replace(piece, split="valid") if piece.split == "test" else piece for piece in bach_corpus.pieces]
    held_out = replace(bach_corpus, pieces=without_test).held_out()
    assert [piece.name for piece in held_out] == [piece.name for piece in bach_corpus if piece.split != "train"]
