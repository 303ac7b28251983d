"""A Grid keeps the time signatures a piece was written in: 6/8 stays 6/8, and grids stored before still load."""

from __future__ import annotations

import numpy as np
import pytest

from musiclstm import MusicLSTMError
from musiclstm.data.sources import score_grid
from musiclstm.music.grid import Grid, merged_spans


def test_a_grid_dict_stored_without_signatures_loads_as_before_and_is_written_the_same():
    stored = {"steps_per_beat": 4, "beats_per_bar": 3, "bar_offset": 2, "changes": [[14, 16]]}
    grid = Grid.from_dict(stored)
    assert grid == Grid(4, 3, 2, ((14, 16),))
    assert grid.signatures == ()
    assert grid.to_dict() == stored  # a manifest of such grids is written as it was
    assert grid.time_signatures(40) == [(0, 3, 4), (2, 3, 4), (14, 4, 4)]


def test_signatures_that_say_what_the_steps_say_are_stored_empty_so_equal_grids_stay_equal():
    assert Grid(4, 3, signatures=((3, 4),)) == Grid(4, 3)
    assert Grid(4, 3, 0, ((24, 16),), ((3, 4), (4, 4))) == Grid(4, 3, 0, ((24, 16),))
    assert Grid.from_bar_lines(4, [(0, 12, (3, 4)), (24, 16, (4, 4))]) == Grid(4, 3, 0, ((24, 16),))


def test_a_grid_with_compound_signatures_writes_and_stores_them():
    grid = Grid(4, 3, 0, ((24, 24), (72, 8)), ((6, 8), (12, 8), (2, 4)))
    assert grid.time_signatures(100) == [(0, 6, 8), (24, 12, 8), (72, 2, 4)]
    assert grid.signatures_at([0, 12, 23, 24, 71, 72, 500]) == [
        (6, 8),
        (6, 8),
        (6, 8),
        (12, 8),
        (12, 8),
        (2, 4),
        (2, 4),
    ]
    stored = grid.to_dict()
    assert stored["signatures"] == [[6, 8], [12, 8], [2, 4]]
    assert Grid.from_dict(stored) == grid
    assert Grid(4, 3).time_signatures(10) == [(0, 3, 4)]  # without signatures, signature_of as before


def test_a_passage_of_a_grid_keeps_the_signatures_in_force_from_its_start():
    grid = Grid(4, 3, 0, ((24, 24), (72, 8)), ((6, 8), (12, 8), (2, 4)))
    assert grid.shifted(24) == Grid(4, 6, 0, ((48, 8),), ((12, 8), (2, 4)))
    assert grid.shifted(12) == Grid(4, 3, 0, ((12, 24), (60, 8)), ((6, 8), (12, 8), (2, 4)))
    assert grid.shifted(80).time_signatures(8) == [(0, 2, 4)]
    with_pickup = Grid(4, 3, 4, signatures=((6, 8),))
    assert with_pickup.time_signatures(30) == [(0, 6, 8), (4, 6, 8)]
    assert with_pickup.shifted(4) == Grid(4, 3, 0, signatures=((6, 8),))


def test_six_eight_then_three_four_are_two_sections_though_their_bars_are_equal():
    grid = Grid.from_bar_lines(4, [(0, 12, (6, 8)), (24, 12, (3, 4)), (48, 12, (3, 4))])
    assert grid == Grid(4, 3, 0, ((24, 12),), ((6, 8), (3, 4)))
    assert grid.time_signatures(60) == [(0, 6, 8), (24, 3, 4)]
    assert Grid.from_bar_lines(4, [(s, 12, (n, d)) for s, n, d in grid.time_signatures(60)]) == grid


def test_a_signature_cut_short_or_capped_falls_back_to_its_steps():
    # a 6/8 stated at step 6 cuts the first 4/4 bar: that bar is 3/8, as its steps say
    grid = Grid.from_bar_lines(4, [(6, 12, (6, 8))])
    assert grid.time_signatures(30) == [(0, 6, 8), (6, 6, 8)]  # a pickup: the end of a 6/8 bar
    assert Grid.from_bar_lines(4, [(0, 12, (5, 8))]) == Grid(4, 3)  # a 5/8 that is not 12 steps is not kept


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"beats_per_bar": 4, "signatures": ((6, 8),)}, r"signatures\[0\] 6/8: a bar of 12 steps .* bars of 16"),
        ({"beats_per_bar": 3, "signatures": ((6, 8), (3, 4))}, r"signatures: 2 given for 1 metre sections"),
        ({"beats_per_bar": 3, "signatures": ((4, 3),)}, r"signatures\[0\] denominator 3: must be a power of two"),
        ({"beats_per_bar": 3, "signatures": ((0, 8),)}, r"signatures\[0\] numerator"),
        ({"beats_per_bar": 3, "signatures": "6/8"}, r"signatures must be a tuple"),
        ({"beats_per_bar": 3, "changes": ((24, 12),), "signatures": ((6, 8), (6, 8))}, r"and its time signature 6/8"),
    ],
)
def test_signatures_that_do_not_fit_are_refused_by_name(fields, message):
    with pytest.raises(MusicLSTMError, match=message):
        Grid(4, **fields)


def test_a_music21_score_in_six_eight_is_read_with_its_signatures():
    from music21 import meter, note, stream

    part = stream.Part()
    for number, signature in enumerate(["6/8", None, "12/8", "2/2"], start=1):
        measure = stream.Measure(number=number)
        if signature:
            measure.timeSignature = meter.TimeSignature(signature)
        length = {"6/8": 3.0, None: 3.0, "12/8": 6.0, "2/2": 4.0}[signature]
        measure.append(note.Note("C4", quarterLength=length))
        part.append(measure)
    score = stream.Score([part])
    grid = score_grid(score, 4)
    assert grid == Grid(4, 3, 0, ((24, 24), (48, 16)), ((6, 8), (12, 8), (2, 2)))
    assert grid.time_signatures(64) == [(0, 6, 8), (24, 12, 8), (48, 2, 2)]


def test_phrase_ends_are_kept_checked_and_stored_only_when_marked():
    grid = Grid(4, 3, 2, phrase_ends=[[10, 14], (14, 16), (30, 34)])  # lists are taken, two spans touching
    assert grid.phrase_ends == ((10, 14), (14, 16), (30, 34))
    assert grid != Grid(4, 3, 2) and grid.with_phrase_ends(()) == Grid(4, 3, 2)
    stored = grid.to_dict()
    assert stored["phrase_ends"] == [[10, 14], [14, 16], [30, 34]]
    assert Grid.from_dict(stored) == grid
    assert "phrase_ends" not in Grid(4, 3, 2).to_dict()
    flags = grid.phrase_end_flags(list(range(-1, 36)))
    assert np.flatnonzero(flags).tolist() == [step + 1 for step in [*range(10, 16), *range(30, 34)]]
    assert not Grid(4).phrase_end_flags(np.arange(5)).any()


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        (((4, 4),), r"phrase_ends\[0\] \(4, 4\): its first step must come before its end"),
        (((8, 12), (10, 14)), r"phrase_ends\[1\] \(10, 14\): begins before the phrase end before it ends \(12\)"),
        (((8, 12), (0, 4)), r"phrase_ends\[1\] \(0, 4\): begins before"),
        (((-1, 4),), r"phrase_ends\[0\] first step"),
        (((1.5, 4),), r"phrase_ends\[0\] first step"),
        ("fermata", r"phrase_ends must be a tuple"),
    ],
)
def test_phrase_ends_that_overlap_or_run_backwards_are_refused_by_name(spans, message):
    with pytest.raises(MusicLSTMError, match=message):
        Grid(4, phrase_ends=spans)


def test_a_passage_keeps_the_phrase_ends_from_its_start_and_a_crop_those_before_its_end():
    grid = Grid(4, phrase_ends=((4, 8), (12, 16), (28, 32)))
    assert grid.shifted(14).phrase_ends == ((0, 2), (14, 18))  # the one under way at 14 begins at 0
    assert grid.shifted(16).phrase_ends == ((12, 16),)
    assert grid.shifted(0) == grid
    assert grid.cropped(14).phrase_ends == ((4, 8), (12, 14))
    assert grid.cropped(12).phrase_ends == ((4, 8),)
    assert grid.cropped(40) is grid


def test_spans_of_several_parts_merge_where_they_overlap_and_stay_apart_where_they_touch():
    assert merged_spans([(12, 16), (0, 4), (12, 14), (14, 20), (20, 24)]) == ((0, 4), (12, 20), (20, 24))


def test_phrase_ends_are_placed_on_the_half_bar_of_every_nth_bar_after_the_last_marked_one():
    pickup = Grid(4, 4, bar_offset=4)  # a one-beat pickup, then bars of 16 steps from step 4
    assert pickup.phrased(0, 128, 2).phrase_ends == ((28, 32), (60, 64), (92, 96), (124, 128))  # as in bwv66.6
    marked = pickup.with_phrase_ends([(24, 28), (40, 44)])  # a mark before the primer's end (36), one after
    assert marked.phrased(36, 100, 2).phrase_ends == ((24, 28), (60, 64), (92, 96))
    assert Grid(4, 3).phrased(0, 100, 2).phrase_ends == ((24, 28), (48, 52), (72, 76), (96, 100))  # 3/4: bar lines
    assert Grid(4).phrased(0, 30, 1).phrase_ends == ((8, 12), (24, 28))
