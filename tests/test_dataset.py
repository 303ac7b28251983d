"""Windows from stored rolls: every frame a target, silence before the start, safe transposition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TICKS_PER_BEAT, write_midi

from musiclstm import CorpusConfig, MusicLSTMError, WindowDataset, build_corpus, load_corpus
from musiclstm.music.piece import allowed_shifts, shift_keys
from musiclstm.network.dataset import ChunkDataset, PieceStreams
from musiclstm.network.reading import as_events


@pytest.fixture
def two_piece_corpus(tmp_path):
    """Two pieces at one step per beat: 'a' climbs a scale for 6 steps, 'b' holds a chord for 3."""
    write_midi(
        tmp_path / "midi" / "a.mid", [(60 + 2 * i, i * TICKS_PER_BEAT, (i + 1) * TICKS_PER_BEAT) for i in range(6)]
    )
    write_midi(tmp_path / "midi" / "b.mid", [(48, 0, 3 * TICKS_PER_BEAT), (52, 0, 3 * TICKS_PER_BEAT)])
    build_corpus(CorpusConfig(str(tmp_path / "midi"), steps_per_beat=1, split_fractions=(1, 0, 0)), tmp_path / "c")
    return load_corpus(tmp_path / "c")


@pytest.fixture
def repeated_note_corpus(tmp_path):
    """One piece at one step per beat: C4 struck three times without a gap over E4 held for the three steps."""
    write_midi(
        tmp_path / "midi" / "r.mid",
        [(60, i * TICKS_PER_BEAT, (i + 1) * TICKS_PER_BEAT) for i in range(3)] + [(64, 0, 3 * TICKS_PER_BEAT)],
    )
    build_corpus(CorpusConfig(str(tmp_path / "midi"), steps_per_beat=1, split_fractions=(1, 0, 0)), tmp_path / "c")
    return load_corpus(tmp_path / "c")


C4, E4 = 60 - 21, 64 - 21  # their key indexes


def every_target(corpus) -> np.ndarray:
    """The targets of every frame of a split, (frames, 264) bool: its events, then the keys sounding before it."""
    rows = []
    for piece in corpus.split("train"):
        before = np.concatenate([np.zeros((1, 88), bool), piece.roll[:-1]])
        rows.append(np.concatenate([as_events(piece.roll, piece.onsets), before], axis=1))
    return np.concatenate(rows)


def test_every_frame_of_every_piece_is_one_target(two_piece_corpus):
    dataset = WindowDataset(two_piece_corpus, "train", window=4)
    assert len(dataset) == 6 + 3
    targets = torch.stack([dataset[i][1] for i in range(len(dataset))]).numpy().astype(bool)
    assert targets.shape == (9, 264)
    expected = np.concatenate([piece.roll for piece in two_piece_corpus.split("train")])
    assert np.array_equal(targets[:, :88], expected)
    assert np.array_equal(targets, every_target(two_piece_corpus))
    assert targets[:6, 88:176].sum() == 6 and targets[6:, 88:176].sum(axis=1).tolist() == [2, 0, 0]  # b's chord once
    assert targets[[0, 6], 176:].sum() == 0  # before each piece's first frame: the silence of its lead-in


def test_a_window_is_the_frames_before_its_target_with_silence_before_the_start(two_piece_corpus):
    dataset = WindowDataset(two_piece_corpus, "train", window=4)
    roll_a = two_piece_corpus[0].roll
    inputs, target = dataset[0]
    assert inputs.shape == (4, 88) and target.shape == (264,) and inputs.dtype == torch.float32
    assert inputs.sum() == 0 and torch.equal(target[:88], torch.from_numpy(roll_a[0]).float())
    assert torch.equal(target[88:176], target[:88]) and target[176:].sum() == 0
    inputs, _ = dataset[2]
    assert np.array_equal(inputs.numpy().astype(bool), np.concatenate([np.zeros((2, 88), bool), roll_a[:2]]))
    inputs, target = dataset[5]
    assert np.array_equal(inputs.numpy().astype(bool), roll_a[1:5])
    assert np.array_equal(target[176:].numpy().astype(bool), roll_a[4])  # the keys sounding before frame 5
    inputs, _ = dataset[6 + 2]  # piece b, frame 2: nothing of piece a leaks in
    assert inputs[:2].sum() == 0 and inputs[2:].sum() == 4


def test_a_piece_shorter_than_the_window_still_gives_all_its_frames(two_piece_corpus):
    dataset = WindowDataset(two_piece_corpus, "train", window=64)
    assert len(dataset) == 9
    inputs, _ = dataset[8]
    assert inputs.shape == (64, 88) and inputs[:62].sum() == 0 and inputs[62:].sum() == 4


def test_an_empty_split_and_a_bad_window_are_named(two_piece_corpus):
    with pytest.raises(MusicLSTMError, match="the 'test' split has no pieces"):
        WindowDataset(two_piece_corpus, "test")
    with pytest.raises(MusicLSTMError, match="window must be at least 1"):
        WindowDataset(two_piece_corpus, "train", window=0)
    with pytest.raises(MusicLSTMError, match="unknown split 'dev'"):
        WindowDataset(two_piece_corpus, "dev")


def test_shift_keys_moves_notes_and_allowed_shifts_keeps_them_on_the_keyboard():
    block = np.zeros((2, 88), dtype=bool)
    block[0, 3] = block[1, 80] = True
    assert list(allowed_shifts(block, -5, 6)) == [-3, -2, -1, 0, 1, 2, 3, 4, 5, 6]
    assert np.flatnonzero(shift_keys(block, 6)[1]).tolist() == [86]
    assert np.flatnonzero(shift_keys(block, -3)[0]).tolist() == [0]
    block[1, 87] = True
    assert list(allowed_shifts(block, -5, 6)) == [-3, -2, -1, 0]
    block[0, 0] = True
    assert list(allowed_shifts(block, -5, 6)) == [0]
    assert list(allowed_shifts(np.zeros((3, 88), bool), -5, 6)) == list(range(-5, 7))


def test_transposition_shifts_context_and_target_together_within_the_keyboard(two_piece_corpus):
    plain = WindowDataset(two_piece_corpus, "train", window=4)
    moved = WindowDataset(two_piece_corpus, "train", window=4, transpose=True)
    torch.manual_seed(0)
    seen = set()
    for _ in range(60):
        inputs, target = moved[5]
        block = torch.cat([inputs, target[None, :88]]).numpy().astype(bool)
        original = plain.example(5)  # (5, 176)
        shift = int(np.flatnonzero(block[-1])[0] - np.flatnonzero(original[-1, :88])[0])
        shifted = shift_keys(original, shift)
        assert -5 <= shift <= 6 and np.array_equal(block, shifted[:, :88])
        assert np.array_equal(target.numpy().astype(bool), np.concatenate([shifted[-1], shifted[-2, :88]]))
        seen.add(shift)
    assert len(seen) >= 8


def test_chunks_make_every_frame_a_target_exactly_once(two_piece_corpus):
    dataset = ChunkDataset(two_piece_corpus, "train", window=4, chunk=4)
    assert len(dataset) == 2 + 1  # piece a: 6 frames in chunks of 4 -> 2; piece b: 3 frames -> 1
    targets = [target[mask] for _, target, mask in (dataset[i] for i in range(len(dataset)))]
    assert sum(len(t) for t in targets) == 9
    expected = np.concatenate([piece.roll for piece in two_piece_corpus.split("train")])
    assert np.array_equal(torch.cat(targets)[:, :88].numpy().astype(bool), expected)
    assert np.array_equal(torch.cat(targets).numpy().astype(bool), every_target(two_piece_corpus))


def test_a_chunk_reads_the_window_before_it_and_predicts_from_the_window_end(two_piece_corpus):
    dataset = ChunkDataset(two_piece_corpus, "train", window=4, chunk=4)
    roll_a = two_piece_corpus[0].roll
    inputs, target, mask = dataset[1]  # piece a, frames 4..7 (6 and 7 are padding)
    assert inputs.shape == (4 + 4 - 1, 88) and target.shape == (4, 264) and mask.tolist() == [True, True, False, False]
    assert np.array_equal(target[:2, :88].numpy().astype(bool), roll_a[4:6]) and target[2:, :176].sum() == 0
    assert np.array_equal(target[:2, 176:].numpy().astype(bool), roll_a[3:5])  # the keys before frames 4 and 5
    assert np.array_equal(inputs[:6].numpy().astype(bool), roll_a[0:6])
    assert inputs[6].sum() == 0
    inputs, target, mask = dataset[0]  # piece a from its start: four frames of silence first
    assert inputs[:4].sum() == 0 and np.array_equal(inputs[4:].numpy().astype(bool), roll_a[0:3])
    assert np.array_equal(target[:, :88].numpy().astype(bool), roll_a[0:4])


def test_every_dataset_reads_its_inputs_through_the_encoder_at_their_absolute_positions(two_piece_corpus, monkeypatch):
    from musiclstm.network import reading

    def positions_column(events, positions, grids):
        return torch.from_numpy(positions).float()[:, None].expand(*events.shape[:-1], 1)

    monkeypatch.setitem(reading.INPUT_FEATURES, "position", reading.InputFeature(1, positions_column))
    inputs = ("keys", "position")
    window = WindowDataset(two_piece_corpus, "train", window=4, inputs=inputs)
    keys = torch.from_numpy(window.example(2)[:-1, :88].astype(np.float32))
    assert window[2][0][:, 88].tolist() == [-2, -1, 0, 1] and torch.equal(window[2][0][:, :88], keys)
    chunk = ChunkDataset(two_piece_corpus, "train", window=4, chunk=4, inputs=inputs)
    assert chunk[1][0][:, 88].tolist() == list(range(0, 7))  # the chunk of frames 4..7: inputs from frame 0
    streams = PieceStreams(two_piece_corpus, "train", batch_size=2, window=4, chunk=4, inputs=inputs)
    first, second = list(streams)[:2]
    assert first[0][0, :, 88].tolist() == list(range(-4, 3)) and second[0][0, :, 88].tolist() == [3, 4, 5, 6]


def test_every_dataset_targets_the_keys_struck_again_of_a_repeated_note_and_the_keys_before(repeated_note_corpus):
    sounding, struck, before = np.zeros((3, 88), bool), np.zeros((3, 88), bool), np.zeros((3, 88), bool)
    sounding[:, [C4, E4]] = True
    struck[:, C4] = struck[0, E4] = True  # C4 struck at every step, E4 once
    before[1:, [C4, E4]] = True
    expected = np.concatenate([sounding, struck, before], axis=1)
    window = WindowDataset(repeated_note_corpus, "train", window=2)
    assert np.array_equal(torch.stack([window[i][1] for i in range(3)]).numpy().astype(bool), expected)
    chunk_inputs, chunk_targets, mask = ChunkDataset(repeated_note_corpus, "train", window=2, chunk=4)[0]
    assert np.array_equal(chunk_targets[mask].numpy().astype(bool), expected)
    (stream,) = PieceStreams(repeated_note_corpus, "train", batch_size=1, window=2, chunk=4)
    assert np.array_equal(stream[1][0][stream[2][0]].numpy().astype(bool), expected)


def test_transposition_moves_the_keys_struck_with_the_keys_sounding(repeated_note_corpus):
    dataset = WindowDataset(repeated_note_corpus, "train", window=2, transpose=True, inputs=("keys", "struck"))
    torch.manual_seed(0)
    seen = set()
    for _ in range(40):
        inputs, target = dataset[2]  # frame 2: C4 struck again over E4 held; frames 0 and 1 read
        shift = int(np.flatnonzero(target[:88])[0]) - C4
        assert np.flatnonzero(target[:88]).tolist() == [C4 + shift, E4 + shift]
        assert np.flatnonzero(target[88:176]).tolist() == [C4 + shift]
        assert np.flatnonzero(target[176:]).tolist() == [C4 + shift, E4 + shift]
        assert np.flatnonzero(inputs[0, 88:]).tolist() == [C4 + shift, E4 + shift]  # frame 0: both struck
        assert np.flatnonzero(inputs[1, 88:]).tolist() == [C4 + shift]
        seen.add(shift)
    assert len(seen) >= 8
