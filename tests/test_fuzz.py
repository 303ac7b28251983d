"""MIDI reading survives hostile files: every one is read or named with a reason, none crashes the run."""

from __future__ import annotations

import random
import re

import pytest
from midi_fuzz import CRAFTED, fuzz_cases

from musiclstm import CorpusConfig, MusicLSTMError, build_corpus
from musiclstm.music.grid import MAX_ROLL_STEPS
from musiclstm.music.roll import midi_to_roll, roll_to_midi

CASES = 300


@pytest.fixture(scope="module")
def seed_files(bach_corpus, tmp_path_factory) -> list[bytes]:
    """Real chorales written as MIDI: the files the mutations start from."""
    folder = tmp_path_factory.mktemp("seeds")
    seeds = []
    for number, piece in enumerate(bach_corpus.pieces[:4]):
        path = folder / f"seed_{number}.mid"
        roll_to_midi(piece.roll, bach_corpus.steps_per_beat).write(str(path))
        seeds.append(path.read_bytes())
    return seeds


def test_every_fuzzed_midi_file_is_read_or_named_with_a_reason(seed_files, tmp_path):
    outcomes = {"read": 0, "named": 0}
    for name, data in fuzz_cases(seed_files, CASES, random.Random(0)):
        path = tmp_path / f"{name}.mid"
        path.write_bytes(data)
        try:
            read = midi_to_roll(path, 4)
        except MusicLSTMError as err:
            assert str(err).startswith(f"{path}: ") and len(str(err)) > len(str(path)) + 2, name
            outcomes["named"] += 1
        else:
            assert read.roll.dtype == bool and read.roll.shape[1] == 88 and len(read.roll) <= MAX_ROLL_STEPS, name
            assert read.roll.any() == (read.reading.n_notes > 0), name
            outcomes["read"] += 1
        path.unlink()
    assert outcomes["read"] + outcomes["named"] == CASES and min(outcomes.values()) > 10


@pytest.mark.parametrize(
    "name, reason",
    [
        ("empty", "empty file (0 bytes)"),
        ("random_bytes", "not a MIDI file"),
        ("zero_resolution", "unreadable MIDI"),
        ("maximum_delta_time", "likely corrupt"),
        ("resolution_1_day_long_note", "steps long at 4 per beat, over the limit"),
        ("over_the_size_limit", "over the 4,000,000-byte limit"),
        ("track_length_lies", "unreadable MIDI"),
    ],
)
def test_each_hopeless_file_gets_its_own_reason(name, reason, tmp_path):
    path = tmp_path / f"{name}.mid"
    path.write_bytes(dict(fuzz_cases([], len(CRAFTED), random.Random(0)))[name])
    with pytest.raises(MusicLSTMError, match=re.escape(reason)):
        midi_to_roll(path, 4)


def test_extreme_but_valid_files_are_read(tmp_path):
    cases = dict(fuzz_cases([], len(CRAFTED), random.Random(0)))
    for name in ("ten_thousand_tracks", "twenty_thousand_notes", "tempo_1_microsecond", "type_2"):
        (tmp_path / f"{name}.mid").write_bytes(cases[name])
        assert midi_to_roll(tmp_path / f"{name}.mid", 4).reading.n_notes > 0, name
    (tmp_path / "off.mid").write_bytes(cases["all_off_keyboard"])
    read = midi_to_roll(tmp_path / "off.mid", 4)
    assert read.reading.n_notes == 0 and read.reading.n_off_keyboard == 50 and not read.roll.any()


def test_a_folder_full_of_hostile_files_still_builds_a_corpus_of_the_good_ones(seed_files, tmp_path):
    folder = tmp_path / "midi"
    folder.mkdir()
    for name, data in fuzz_cases(seed_files, 60, random.Random(1)):
        (folder / f"{name}.mid").write_bytes(data)
    for number, data in enumerate(seed_files):
        (folder / f"good_{number}.mid").write_bytes(data)
    summary = build_corpus(CorpusConfig(str(folder), workers=2), tmp_path / "corpus")
    skipped = {entry["name"]: entry["reason"] for entry in summary["skipped"]}
    assert {"empty.mid", "random_bytes.mid", "all_off_keyboard.mid"} <= skipped.keys()
    assert "outside the 88 keys" in skipped["all_off_keyboard.mid"]
    pieces = sum(split["pieces"] for split in summary["splits"].values())
    assert pieces + len(skipped) == summary["files_read"] == 64 and pieces >= 4
    assert all(skipped.values())  # every skipped file has its reason
