"""Is it new? Copies found whole, in any transposition, with their source; new music found new."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from musiclstm import open_composer
from musiclstm.composing.composer import Composition, with_novelty
from musiclstm.judging.novelty import PassageHashes, canonical, novelty, novelty_report, window_minimum
from musiclstm.music.piece import Piece

BAR = 16


def random_pieces(seed: int, lengths: tuple[int, ...], highest_key: int = 80) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    pieces = [rng.random((length, 88)) < 0.06 for length in lengths]
    for piece in pieces:
        piece[:, highest_key:] = False  # room to transpose up without leaving the keyboard
    return pieces


def test_every_passage_gets_one_hash_per_transposition_class():
    pieces = random_pieces(0, (40, 25, 9))
    hashes = PassageHashes(pieces)
    values, firsts = hashes.windows(7)
    expected = {}
    for first in range(sum(len(piece) for piece in pieces)):
        number, at = hashes.locate(first)
        passage = pieces[number][at : at + 7]
        if at + 7 <= len(pieces[number]) and passage.any():
            expected[first] = canonical(passage).tobytes()
    assert sorted(firsts.tolist()) == sorted(expected)
    classes = {}
    for value, first in zip(values.tolist(), firsts.tolist(), strict=True):
        classes.setdefault(expected[first], set()).add(value)
    assert all(len(found) == 1 for found in classes.values())
    assert len({value for found in classes.values() for value in found}) == len(classes)


def test_a_piece_copying_four_bars_a_third_higher_is_reported_whole_with_its_source():
    training = random_pieces(1, (96, 128, 64))
    piece = random_pieces(2, (160,))[0]
    piece[32:96] = np.roll(training[1][48:112], 4, axis=1)  # 4 bars of the second piece, a major third up
    found = novelty(piece, PassageHashes(training), ["one", "two", "three"], BAR, primer_steps=16)
    assert found["longest_shared_steps"] == 64 and found["longest_shared_bars"] == 4
    assert (found["source"], found["source_step"], found["at_step"]) == ("two", 48, 32)
    assert found["copied_bar_share"] == pytest.approx(4 / 9)  # bars counted from the primer's end: 16, 32, ...


def test_a_whole_piece_copied_is_all_copied_and_a_random_one_is_new():
    training = random_pieces(3, (128, 128))
    copied = novelty(training[0], PassageHashes(training), ["a", "b"], BAR)
    assert copied["longest_shared_steps"] == 128 and copied["copied_bar_share"] == 1 and copied["source"] == "a"
    new = novelty(random_pieces(4, (128,))[0], PassageHashes(training), ["a", "b"], BAR)
    assert new["longest_shared_steps"] <= 2 and new["copied_bar_share"] == 0


def test_silence_is_never_a_copy():
    training = [np.zeros((64, 88), dtype=bool)]
    found = novelty(np.zeros((64, 88), dtype=bool), PassageHashes(training), ["rests"], BAR)
    assert found["longest_shared_steps"] == 0 and found["source"] is None and found["copied_bar_share"] == 0


def test_the_report_summarises_the_pieces_and_counts_those_copying_four_bars():
    training = random_pieces(5, (128, 96))
    pieces = {"copy.mid": training[1][:80].copy(), "new.mid": random_pieces(6, (80,))[0]}
    report = novelty_report(pieces, training, ["a", "b"], BAR)
    assert report["pieces_copying_4_bars_or_more"] == 1 and report["longest_shared_bars"] == 5
    assert report["pieces"]["copy.mid"]["source"] == "b" and report["training_steps"] == 224


def test_generate_records_novelty_and_warns_of_a_piece_copying_four_bars(trained_runs, bach_corpus, caplog):
    composer = open_composer(trained_runs["all"])
    chorale = bach_corpus.split("train")[0]
    rolls = np.stack([chorale.roll[:80], np.roll(chorale.roll[:80], 2, axis=1)])
    composition = Composition(tuple(map(Piece, rolls)), 16, {}, ("primer",) * 2, ("C", "C"))
    with caplog.at_level(logging.WARNING):
        judged = with_novelty(composition, composer)
    assert [entry["source"] for entry in judged.novelty] == [chorale.name, chorale.name]
    assert judged.novelty[0]["longest_shared_steps"] == 64 and judged.novelty[0]["at_step"] == 16
    assert f"piece 1 copies 4 bars of the training piece {chorale.name}" in caplog.text


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 8, 16, 33, 50])
def test_the_window_minimum_is_the_least_value_of_every_run_of_steps(steps):
    values = np.random.default_rng(steps).integers(0, 100, 50)
    expected = [values[start : start + steps].min() for start in range(len(values) - steps + 1)]
    assert window_minimum(values, steps).tolist() == expected
