"""Sources into corpora: skipping with reasons, splits by piece, safe pickles, reuse, atomic writes,
struck keys beside the sounding ones, each piece's metre, and the notes the grid merges."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import TICKS_PER_BEAT, write_midi

from musiclstm import CorpusConfig, MusicLSTMError, build_corpus, load_corpus
from musiclstm.data import corpus as corpus_module
from musiclstm.data.corpus import assign_splits, format_summary, unpack_events, unpack_roll, write_corpus
from musiclstm.music.grid import Grid
from musiclstm.music.piece import Piece

BEAT = TICKS_PER_BEAT


def midi_folder(root, n_good: int = 4):
    """A folder of good files, nested and with both suffixes, plus one of each kind of bad file."""
    for index in range(n_good):
        suffix = ".midi" if index % 2 else ".mid"
        write_midi(root / f"set{index % 2}" / f"song{index}{suffix}", [(60 + index, 0, BEAT), (67, BEAT, 2 * BEAT)])
    (root / "empty.mid").write_bytes(b"")
    (root / "text.mid").write_bytes(b"hello, not music")
    write_midi(root / "drums.mid", [(36, 0, BEAT)], channel=9)
    write_midi(root / "whistle.mid", [(120, 0, BEAT)])
    (root / "notes.txt").write_text("not read: wrong suffix")
    return root


def test_build_corpus_keeps_good_files_and_names_each_bad_one_with_its_reason(tmp_path):
    summary = build_corpus(CorpusConfig(str(midi_folder(tmp_path / "midi"))), tmp_path / "corpus")
    skipped = {entry["name"]: entry["reason"] for entry in summary["skipped"]}
    assert skipped == {
        "drums.mid": "only drum tracks (1 drum notes; drums are left out)",
        "empty.mid": "empty file (0 bytes)",
        "text.mid": "not a MIDI file (no MThd header)",
        "whistle.mid": "all 1 notes fall outside the 88 keys (MIDI 21..108)",
    }
    assert summary["files_read"] == 8
    assert sum(split["pieces"] for split in summary["splits"].values()) == 4
    assert (summary["drum_notes"], summary["notes_off_keyboard"]) == (1, 1)
    names = sorted(piece.name for piece in load_corpus(tmp_path / "corpus"))
    assert names == ["set0/song0.mid", "set0/song2.mid", "set1/song1.midi", "set1/song3.midi"]


def test_load_corpus_gives_each_piece_its_roll_with_column_k_at_pitch_21_plus_k(tmp_path):
    write_midi(tmp_path / "midi" / "one.mid", [(21, 0, BEAT), (108, BEAT, 2 * BEAT)])
    build_corpus(CorpusConfig(str(tmp_path / "midi"), steps_per_beat=2), tmp_path / "corpus")
    corpus = load_corpus(tmp_path / "corpus")
    (piece,) = corpus.pieces
    expected = np.zeros((4, 88), dtype=bool)
    expected[0:2, 0] = True
    expected[2:4, 87] = True
    assert (piece.name, piece.split, piece.frames, corpus.steps_per_beat) == ("one.mid", "train", 4, 2)
    assert piece.roll.dtype == bool and np.array_equal(piece.roll, expected)


def test_build_corpus_with_no_usable_file_is_an_error_naming_the_reasons(tmp_path):
    (tmp_path / "midi").mkdir()
    (tmp_path / "midi" / "a.mid").write_bytes(b"junk")
    with pytest.raises(MusicLSTMError, match=r"no usable piece among 1 \(a.mid: not a MIDI file"):
        build_corpus(CorpusConfig(str(tmp_path / "midi")), tmp_path / "corpus")
    assert not (tmp_path / "corpus" / "manifest.json").exists()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root / "absent", "absent: no such file or folder"),
        (lambda root: (root / "tune.wav").write_bytes(b"RIFF") and root / "tune.wav", "tune.wav: not a source"),
        (lambda root: (root / "none").mkdir() or root / "none", "none: no .mid or .midi files"),
    ],
)
def test_build_corpus_names_a_source_it_cannot_use(tmp_path, make, message):
    with pytest.raises(MusicLSTMError, match=message):
        build_corpus(CorpusConfig(str(make(tmp_path))), tmp_path / "corpus")


def test_assign_splits_is_by_piece_seeded_and_70_15_15():
    pieces = [None] * 20  # no split given by the source
    splits = assign_splits(pieces, (0.7, 0.15, 0.15), seed=42)
    assert [splits.count(name) for name in ("train", "valid", "test")] == [14, 3, 3]
    assert splits == assign_splits(pieces, (0.7, 0.15, 0.15), seed=42)
    assert splits != assign_splits(pieces, (0.7, 0.15, 0.15), seed=7)


def test_assign_splits_gives_a_three_piece_corpus_one_piece_in_each_split():
    pieces = [None] * 3
    assert sorted(assign_splits(pieces, (0.7, 0.15, 0.15), seed=0)) == ["test", "train", "valid"]


def test_rebuilding_an_unchanged_source_reuses_the_corpus_and_a_changed_one_rebuilds(tmp_path):
    source = midi_folder(tmp_path / "midi")
    config = CorpusConfig(str(source))
    assert build_corpus(config, tmp_path / "corpus")["reused"] is False
    assert build_corpus(config, tmp_path / "corpus")["reused"] is True
    write_midi(source / "new.mid", [(72, 0, BEAT)])
    rebuilt = build_corpus(config, tmp_path / "corpus")
    assert rebuilt["reused"] is False and len(load_corpus(tmp_path / "corpus")) == 5
    assert build_corpus(CorpusConfig(str(source), steps_per_beat=2), tmp_path / "corpus")["reused"] is False
    assert len(list((tmp_path / "corpus").glob("rolls-*.npy"))) == 1


def test_an_interrupted_rebuild_leaves_the_previous_corpus_whole(tmp_path, monkeypatch):
    source = midi_folder(tmp_path / "midi")
    build_corpus(CorpusConfig(str(source)), tmp_path / "corpus")
    before = [(piece.name, piece.roll.tobytes()) for piece in load_corpus(tmp_path / "corpus")]

    def killed_at_the_manifest(path, value):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus_module, "write_json_atomically", killed_at_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        build_corpus(CorpusConfig(str(source), steps_per_beat=8), tmp_path / "corpus")
    after = [(piece.name, piece.roll.tobytes()) for piece in load_corpus(tmp_path / "corpus")]
    assert after == before
    assert not list((tmp_path / "corpus").glob(".*.tmp"))


def test_load_corpus_names_a_folder_that_is_not_a_corpus_and_a_damaged_rolls_file(tmp_path):
    with pytest.raises(MusicLSTMError, match="not a corpus \\(no manifest.json\\)"):
        load_corpus(tmp_path)
    build_corpus(CorpusConfig(str(midi_folder(tmp_path / "midi"))), tmp_path / "corpus")
    (rolls,) = (tmp_path / "corpus").glob("rolls-*.npy")
    rolls.write_bytes(rolls.read_bytes()[:-11])
    with pytest.raises(MusicLSTMError, match="rebuild the corpus"):
        load_corpus(tmp_path / "corpus")


def test_a_corpus_stores_struck_keys_beside_the_sounding_ones_and_each_piece_its_grid(tmp_path):
    write_midi(tmp_path / "midi" / "again.mid", [(60, 0, BEAT), (60, BEAT, 2 * BEAT), (64, 0, 2 * BEAT)])
    build_corpus(CorpusConfig(str(tmp_path / "midi"), steps_per_beat=2), tmp_path / "corpus")
    corpus = load_corpus(tmp_path / "corpus")
    (piece,) = corpus.pieces
    assert np.load(tmp_path / "corpus" / corpus.manifest["rolls_file"]).shape == (4, 22)
    assert np.flatnonzero(piece.roll[:, 60 - 21]).tolist() == [0, 1, 2, 3]
    assert np.flatnonzero(piece.onsets[:, 60 - 21]).tolist() == [0, 2]
    assert np.flatnonzero(piece.onsets[:, 64 - 21]).tolist() == [0] and piece.onsets.sum() == 3
    assert piece.grid == Grid(2) and corpus.manifest["pieces"][0]["grid"] == Grid(2).to_dict()
    events = unpack_events(piece.packed)
    assert events.shape == (4, 176)
    assert np.array_equal(events[:, :88], piece.roll) and np.array_equal(events[:, 88:], piece.onsets)
    assert np.array_equal(unpack_roll(np.asarray(piece.packed)[:, :11]), piece.roll)


def test_a_struck_key_that_is_not_sounding_is_not_stored(tmp_path):
    roll = np.zeros((3, 88), dtype=bool)
    roll[0:2, 10] = True
    onsets = np.zeros_like(roll)
    onsets[0, 10] = onsets[2, 10] = onsets[1, 20] = True
    write_corpus(tmp_path, [Piece(roll, onsets, name="p")], ["train"], {"steps_per_beat": 4})
    (piece,) = load_corpus(tmp_path)
    assert np.argwhere(piece.onsets).tolist() == [[0, 10]]
    assert piece.grid == Grid(4)  # a piece made without a grid is 4/4 from its first step


def test_a_corpus_of_format_1_is_refused_with_the_rebuild_message_and_rebuilt_by_data(tmp_path):
    source = midi_folder(tmp_path / "midi")
    build_corpus(CorpusConfig(str(source)), tmp_path / "corpus")
    manifest_path = tmp_path / "corpus" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    (rolls,) = (tmp_path / "corpus").glob("rolls-*.npy")
    np.save(rolls, np.load(rolls)[:, :11])  # the old layout: sounding keys only
    manifest["format_version"] = 1
    for entry in manifest["pieces"]:
        del entry["grid"], entry["merged"]
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(
        MusicLSTMError, match="corpus format 1 is not the supported 2; rebuild it with 'musiclstm data'"
    ):
        load_corpus(tmp_path / "corpus")
    assert build_corpus(CorpusConfig(str(source)), tmp_path / "corpus")["reused"] is False
    assert load_corpus(tmp_path / "corpus").manifest["format_version"] == 2


def test_the_summary_counts_notes_kept_and_names_the_files_that_merge_most(tmp_path):
    source = tmp_path / "midi"
    write_midi(source / "a.mid", [(60, 0, BEAT), (60, BEAT, 2 * BEAT)], extra_tracks=2)  # 6 notes, 2 kept
    write_midi(source / "b.mid", [(62, 0, BEAT)], extra_tracks=1)  # 2 notes, 1 kept
    write_midi(source / "c.mid", [(64, 0, BEAT), (64, BEAT, 2 * BEAT)])  # struck again: both kept
    summary = build_corpus(CorpusConfig(str(source)), tmp_path / "corpus")
    assert (summary["notes_kept"], summary["notes_merged"]) == (5, 5)
    assert summary["most_merged"] == [["a.mid", 4], ["b.mid", 1]]
    lines = format_summary(summary).splitlines()
    assert "  notes kept: 5" in lines
    assert (
        "  notes merged on the grid: 5 (two notes of one key starting in one step); most in a.mid (4), b.mid (1)"
        in lines
    )


def test_a_chorales_fermatas_come_back_from_a_corpus_and_a_corpus_built_before_them_loads_as_before(tmp_path):
    import music21

    from musiclstm.data.sources import score_to_roll

    chorale = score_to_roll(music21.corpus.getWork("bach/bwv66.6"), 4)
    spans = ((12, 16), (28, 32), (44, 48), (76, 80), (108, 116), (140, 144))
    assert chorale.grid.phrase_ends == spans
    write_corpus(tmp_path, [chorale], ["train"], {"steps_per_beat": 4})
    (stored,) = load_corpus(tmp_path)
    assert stored.grid == chorale.grid and stored.piece.grid.phrase_ends == spans
    assert stored.piece.steps(40, 80).grid.phrase_ends == ((4, 8), (36, 40))
    manifest_path = tmp_path / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["pieces"][0]["grid"]["phrase_ends"] == [list(span) for span in spans]
    del manifest["pieces"][0]["grid"]["phrase_ends"]  # as a corpus of format 2 was written before
    manifest_path.write_text(json.dumps(manifest))
    (old,) = load_corpus(tmp_path)
    assert old.grid == Grid(4, 4, bar_offset=4) and old.grid.phrase_ends == ()
