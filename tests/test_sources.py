"""Where music comes from: the Bach chorales, benchmark files kept in their own split, pickles that cannot run code."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest

from musiclstm import CorpusConfig, MusicLSTMError, build_corpus, load_corpus


def benchmark_data(scalar=int):
    return {
        "train": [[(scalar(60), scalar(64)), (), (scalar(67),)], [(scalar(48),)] * 5],
        "valid": [[(scalar(62),)] * 2],
        "test": [[(scalar(65), scalar(130))], [(scalar(2),)]],
    }


def test_benchmark_pickle_with_numpy_scalars_keeps_its_own_split(tmp_path):
    path = tmp_path / "JSB Chorales.pickle"
    path.write_bytes(pickle.dumps(benchmark_data(np.int64)))
    summary = build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    corpus = load_corpus(tmp_path / "corpus")
    assert [(piece.name, piece.split, piece.frames) for piece in corpus] == [
        ("train/0000", "train", 3),
        ("train/0001", "train", 5),
        ("valid/0000", "valid", 2),
        ("test/0000", "test", 1),
    ]
    assert corpus.steps_per_beat == 1
    assert [np.flatnonzero(step).tolist() for step in corpus[0].roll] == [[39, 43], [], [46]]
    assert summary["skipped"] == [
        {"name": "test/0001", "reason": "all 1 notes fall outside the 88 keys (MIDI 21..108)"}
    ]
    assert summary["notes_off_keyboard"] == 2


def test_benchmark_pickle_from_numpy_1_in_protocol_2_loads(tmp_path):
    blob = pickle.dumps(benchmark_data(np.int64), protocol=2)
    assert b"numpy._core.multiarray\nscalar" in blob
    path = tmp_path / "old.pkl"
    path.write_bytes(blob.replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n"))
    build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    assert [piece.frames for piece in load_corpus(tmp_path / "corpus")] == [3, 5, 2, 1]


def test_benchmark_json_reads_like_the_pickle(tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(benchmark_data()))
    build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    assert [piece.split for piece in load_corpus(tmp_path / "corpus")] == ["train", "train", "valid", "test"]


class RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_crafted_pickle_is_refused_and_never_runs_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": [[[60]]], "valid": [], "test": [RunsCode(marker)]}))
    with pytest.raises(MusicLSTMError, match=r"evil.pkl: refused to load posix.system"):
        build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")
    assert not marker.exists()


def test_a_benchmark_file_of_the_wrong_shape_is_named(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2, 3]")
    with pytest.raises(MusicLSTMError, match="list.json: not a benchmark file: expected a dict"):
        build_corpus(CorpusConfig(str(path)), tmp_path / "corpus")


def test_the_bach_source_reads_real_chorales_in_four_voices(bach_corpus):
    assert len(bach_corpus) == 12 and bach_corpus.source == "bach" and bach_corpus.steps_per_beat == 4
    assert {piece.split for piece in bach_corpus} == {"train", "valid", "test"}
    for piece in bach_corpus:
        sounding = piece.roll.sum(axis=1)
        assert piece.frames > 64 and 3.0 <= sounding.mean() <= 5.5, piece.name
