"""How the network reads a piece: the encoder, the lead-in and the two contexts' readers."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from musiclstm.config import ModelConfig, MusicLSTMError
from musiclstm.music.grid import Grid
from musiclstm.network import reading
from musiclstm.network.model import MusicLSTM
from musiclstm.network.reading import WindowReader, as_events, open_reader, with_lead_in


def small_model(**changes) -> MusicLSTM:
    torch.manual_seed(0)
    return MusicLSTM(ModelConfig(window=8, lstm_units=16, dense_units=8, **changes)).eval()


def random_events(*shape: int, density: float = 0.1) -> torch.Tensor:
    """Events (*shape, 176) float32 of a random roll, some held keys struck again."""
    roll = np.random.default_rng(0).random((*shape, 88)) < density
    again = np.random.default_rng(1).random((*shape, 88)) < 0.3
    return torch.from_numpy(as_events(roll, again & roll).astype(np.float32))


def test_the_lead_in_is_silence_before_the_first_frame():
    frames = np.ones((2, 3, 88), dtype=bool)
    padded = with_lead_in(frames, 4)
    assert padded.shape == (2, 7, 88) and not padded[:, :4].any() and padded[:, 4:].all()


@pytest.mark.parametrize("lanes", [True, False])
def test_the_window_reader_predicts_each_step_from_the_last_window_steps_alone(lanes):
    model = small_model()
    frames = random_events(3, 30)
    with torch.inference_mode():
        reader = WindowReader(model, frames[:, :10], 3, lanes=lanes)
        for end in range(10, 30):
            expected, _ = model(reading.encode(frames[:, end - 8 : end], end - 8, model.config.inputs))
            assert torch.allclose(reader.features, expected, atol=1e-5)
            reader.read(frames[:, end])


@pytest.mark.parametrize("context", ["stateful", "window"])
def test_a_primer_shared_by_every_piece_is_read_once_and_each_piece_goes_on_from_it(context):
    model = small_model()
    primer, after = random_events(1, 40), random_events(3, 5, density=0.3)
    with torch.inference_mode():
        shared = open_reader(model, primer, context, 3)
        separate = open_reader(model, primer.expand(3, -1, -1), context, 3)
        for step in range(5):
            assert torch.allclose(shared.features, separate.features, atol=1e-6)
            shared.read(after[:, step])
            separate.read(after[:, step])
        assert not torch.allclose(shared.features[0], shared.features[1])  # the pieces went their own ways


@pytest.mark.parametrize(("context", "batch"), [("stateful", 3), ("window", 3), ("window", 1)])
def test_a_reader_resampled_goes_on_as_if_its_chosen_rows_had_been_read_alone(context, batch):
    model = small_model()
    frames = random_events(batch, 20, density=0.05)
    rows = torch.tensor([batch - 1] * batch)
    with torch.inference_mode():
        reader = open_reader(model, frames[:, :16], context, batch)
        reader.select(rows)
        reader.read(frames[rows, 16])
        alone = open_reader(model, frames[rows, :17], context, batch)
    assert torch.allclose(reader.features, alone.features, atol=1e-5)


def parity(events: torch.Tensor, positions: np.ndarray, grids) -> torch.Tensor:
    """A toy input: 1 on odd steps, from each step's absolute position (the lead-in's are negative)."""
    return torch.from_numpy(positions % 2).float()[:, None].expand(*events.shape[:-1], 1)


@pytest.fixture
def with_parity(monkeypatch):
    """The step's parity added as an input in the one place inputs are defined: the encoder's registry."""
    monkeypatch.setitem(reading.INPUT_FEATURES, "parity", reading.InputFeature(1, parity))
    return ("keys", "parity")


def test_the_encoder_puts_the_inputs_side_by_side_at_their_absolute_positions(with_parity):
    frames = np.zeros((2, 4, 88), dtype=bool)
    frames[:, :, 60] = True
    rows = reading.encode(as_events(frames), -3, with_parity)
    assert rows.shape == (2, 4, 89) and rows.dtype == torch.float32
    assert rows[0, :, 60].tolist() == [1, 1, 1, 1] and rows[1, :, 88].tolist() == [1, 0, 1, 0]  # steps -3..0


def test_an_input_added_to_the_encoder_alone_is_trained_scored_and_composed_with(with_parity, tmp_path):
    from conftest import TICKS_PER_BEAT, write_midi

    from musiclstm import MODEL_PRESETS, CorpusConfig, TrainConfig, build_corpus, generate, load_corpus, train
    from musiclstm.judging.evaluation import evaluate_model
    from musiclstm.network.run import load_model

    for number in range(4):
        notes = [(60 + (i + number) % 7, i * TICKS_PER_BEAT, (i + 1) * TICKS_PER_BEAT) for i in range(24)]
        write_midi(tmp_path / "midi" / f"{number}.mid", notes)
    build_corpus(CorpusConfig(str(tmp_path / "midi"), split_fractions=(0.5, 0.25, 0.25)), tmp_path / "corpus")
    config = replace(MODEL_PRESETS["small"], window=8, inputs=with_parity)
    train(tmp_path / "corpus", tmp_path / "run", config, TrainConfig(epochs=1, chunk=16))

    model = load_model(tmp_path / "run").eval()
    assert model.config.inputs == with_parity and model.lstm1.input_size == 89
    piece = load_corpus(tmp_path / "corpus").split("test")[0]
    events = as_events(piece.roll, piece.onsets)
    for context in ("stateful", "window"):
        assert np.isfinite(evaluate_model(model, load_corpus(tmp_path / "corpus"), "test", context)["nll"])
        scored = torch.cat(list(reading.piece_features(model, events, context, piece.grid)))  # (frames, dense_units)
        with torch.inference_mode():
            reader = open_reader(model, events[None, :5], context, 1, piece.grid)
            assert torch.allclose(reader.features[0], scored[5], atol=1e-5)
            reader.read(torch.from_numpy(events[None, 5]))
            assert torch.allclose(reader.features[0], scored[6], atol=1e-5)  # the reader knows where step 6 is
        composition = generate(tmp_path / "run", length=4, num_outputs=2, context=context, seed=1)
        assert composition.rolls.shape[1:] == (composition.primer_steps + 4, 88)


def test_a_model_reads_the_keys_sounding_and_struck_the_metre_and_phrase_ends_unless_told_otherwise():
    assert ModelConfig().inputs == ("keys", "struck", "metre", "phrase")
    assert ModelConfig(inputs=["keys"]).inputs == ("keys",)
    assert reading.input_width(ModelConfig()) == 88 + 88 + 12 + 5
    assert reading.input_width(ModelConfig(inputs=("keys",))) == 88  # the seed's network
    with pytest.raises(MusicLSTMError, match="unknown input 'beat'"):
        MusicLSTM(ModelConfig(inputs=("keys", "beat")))


def test_the_phrase_input_says_the_next_step_lies_in_a_phrase_end_and_how_many_beats_away_the_next_begins():
    grid = Grid(4, 4, phrase_ends=((8, 12), (20, 24)))
    rows = reading.encode(as_events(np.zeros((24, 88), dtype=bool)), 0, ("phrase",), grid).numpy()
    assert np.flatnonzero(rows[:, 0]).tolist() == [7, 8, 9, 10, 19, 20, 21, 22]  # the step after is in a span
    beats_ahead = [int(np.flatnonzero(row[1:])[0]) + 1 if row[1:].any() else 0 for row in rows]
    assert beats_ahead[:8] == [2, 2, 2, 2, 1, 1, 1, 1]  # the first span begins at step 8
    assert beats_ahead[8:20] == [3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1]  # then the second, at step 20
    assert beats_ahead[20:] == [0, 0, 0, 0]  # none after the last
    assert not reading.encode(as_events(np.zeros((8, 88), dtype=bool)), -4, ("phrase",), Grid(4)).numpy().any()


def test_the_metre_input_marks_bars_strong_beats_beats_and_eighths_from_the_pieces_own_bar_lines():
    grid = Grid(4, 4, bar_offset=4)  # a one-beat pickup, then bars of 4/4
    rows = reading.encode(as_events(np.zeros((20, 88), dtype=bool)), -4, ("metre-flags",), grid)
    bar, strong, beat, eighth, sixteenth = rows.T.numpy()
    assert np.flatnonzero(bar).tolist() == [8]  # rows are steps -4..15: the bar line at step 4
    assert np.flatnonzero(strong).tolist() == [0, 16] and np.flatnonzero(beat).tolist() == [0, 4, 8, 12, 16]
    assert np.flatnonzero(eighth).tolist() == list(range(0, 20, 2)) and sixteenth.all()
    waltz = reading.encode(as_events(np.zeros((12, 88), dtype=bool)), 0, ("metre-flags",), Grid(4, 3))
    assert not waltz[:, 1].any()  # three beats: no second half-bar


def test_the_metre_input_is_the_sixteenth_of_the_beat_and_the_beat_of_the_bar_one_hot():
    grid = Grid(4, 3, bar_offset=2)  # a half-beat pickup, then bars of 3/4
    rows = reading.encode(as_events(np.zeros((16, 88), dtype=bool)), 0, ("metre",), grid).numpy()
    assert rows.shape == (16, 12) and (rows.sum(axis=1) == 2).all()
    sixteenth, beat = rows[:, :4].argmax(axis=1), rows[:, 4:].argmax(axis=1)
    assert sixteenth.tolist() == [2, 3] + [0, 1, 2, 3] * 3 + [0, 1]
    assert beat.tolist() == [2, 2] + [0] * 4 + [1] * 4 + [2] * 4 + [0, 0]


def test_each_piece_of_a_batch_reads_its_own_metre():
    model = small_model()
    events = random_events(2, 12)
    grids = [Grid(4, 4), Grid(4, 3, bar_offset=2)]
    with torch.inference_mode():
        together = open_reader(model, events, "stateful", 2, grids)
        alone = [open_reader(model, events[i : i + 1], "stateful", 1, grids[i]) for i in range(2)]
    for number in range(2):
        assert torch.allclose(together.features[number], alone[number].features[0], atol=1e-6)
    assert not torch.allclose(alone[0].features, open_reader(model, events[1:], "stateful", 1, grids[0]).features)
