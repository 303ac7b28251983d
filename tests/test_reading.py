"""How the network reads a piece: the encoder, the lead-in and the two contexts' readers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musiclstm.config import ModelConfig
from musiclstm.model import MusicLSTM
from musiclstm.reading import WindowReader, open_reader, with_lead_in


def small_model(**changes) -> MusicLSTM:
    torch.manual_seed(0)
    return MusicLSTM(ModelConfig(window=8, lstm_units=16, dense_units=8, **changes)).eval()


def test_the_lead_in_is_silence_before_the_first_frame():
    frames = np.ones((2, 3, 88), dtype=bool)
    padded = with_lead_in(frames, 4)
    assert padded.shape == (2, 7, 88) and not padded[:, :4].any() and padded[:, 4:].all()


@pytest.mark.parametrize("lanes", [True, False])
def test_the_window_reader_predicts_each_step_from_the_last_window_steps_alone(lanes):
    model = small_model()
    frames = (torch.rand(3, 30, 88) < 0.1).float()
    with torch.inference_mode():
        reader = WindowReader(model, frames[:, :10], 3, lanes=lanes)
        for end in range(10, 30):
            expected, _ = model(frames[:, end - 8 : end])
            assert torch.allclose(reader.features, expected, atol=1e-5)
            reader.read(frames[:, end])


@pytest.mark.parametrize("context", ["stateful", "window"])
def test_a_primer_shared_by_every_piece_is_read_once_and_each_piece_goes_on_from_it(context):
    model = small_model()
    primer, after = (torch.rand(1, 40, 88) < 0.1).float(), (torch.rand(3, 5, 88) < 0.1).float()
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
    frames = torch.rand(batch, 20, 88) < 0.05
    rows = torch.tensor([batch - 1] * batch)
    with torch.inference_mode():
        reader = open_reader(model, frames[:, :16], context, batch)
        reader.select(rows)
        reader.read(frames[rows, 16])
        alone = open_reader(model, frames[rows, :17], context, batch)
    assert torch.allclose(reader.features, alone.features, atol=1e-5)
