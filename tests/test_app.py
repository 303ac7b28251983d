"""The Streamlit studio's widget logic, driven by Streamlit's AppTest (no browser; see test_browser.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

import musiclstm
from musiclstm import BUNDLED_MODEL, midi_to_roll

APP = musiclstm.STUDIO_PAGE


def open_studio(monkeypatch, model: Path | None, runs: Path) -> AppTest:
    if model is None:
        monkeypatch.delenv("MUSICLSTM_MODEL", raising=False)
    else:
        monkeypatch.setenv("MUSICLSTM_MODEL", str(model))
    monkeypatch.setenv("MUSICLSTM_RUNS", str(runs))
    return AppTest.from_file(APP, default_timeout=120).run()


def compose_with_seed(page: AppTest, seed: int) -> AppTest:
    page.radio(key="choose").set_value("sample")
    page.checkbox(key="fresh_seed").uncheck().run()
    page.number_input(key="seed").set_value(seed)
    return page.button[0].click().run()


def test_generate_shows_the_roll_the_audio_the_downloads_and_the_statistics(trained_runs, monkeypatch, tmp_path):
    page = open_studio(monkeypatch, trained_runs["all"], tmp_path)
    assert not page.exception and not page.error
    picker = page.sidebar.selectbox[0]  # the model it was started with comes first, the bundled one last
    assert picker.label == "Model" and picker.options == [str(trained_runs["all"]), str(BUNDLED_MODEL)]
    assert picker.value == str(trained_runs["all"]) and not page.get("audio")
    compose_with_seed(page, 11)
    assert not page.exception and not page.error
    piece = page.session_state["piece"]
    assert piece["seed"] == 11 and "(held out)" in piece["primer"]
    assert piece["files"]["png"].startswith(b"\x89PNG") and piece["files"]["midi"].startswith(b"MThd")
    assert len(page.get("image")) == 1 and len(page.get("audio")) == 1 and len(page.get("download_button")) == 2
    table = page.table[0].value
    assert list(table.columns) == ["", "this piece", "held-out music of the model's corpus"]
    assert table[""][0] == "notes per step" and float(table["this piece"][0]) > 0
    assert 3 < float(table["held-out music of the model's corpus"][0]) < 5  # chorales: about 4 notes a step
    four_notes = list(table[""]).index("4-note steps")
    assert 0.5 < float(table["held-out music of the model's corpus"][four_notes]) <= 1  # chorales: mostly 4 voices
    again = compose_with_seed(open_studio(monkeypatch, trained_runs["all"], tmp_path), 11)
    assert again.session_state["piece"]["files"]["midi"] == piece["files"]["midi"]  # the same seed, the same piece


def test_a_strategy_sets_its_temperature_and_scale_and_the_length_is_in_bars(trained_runs, monkeypatch, tmp_path):
    page = open_studio(monkeypatch, trained_runs["all"], tmp_path)
    assert page.slider(key="temperature_balanced").value == 0.8
    page.selectbox(key="strategy").set_value("jazz").run()
    assert page.slider(key="temperature_jazz").value == 0.9 and page.selectbox(key="scale_jazz").value == "blues"
    page.slider(key="bars").set_value(2)
    compose_with_seed(page, 3)
    (tmp_path / "piece.mid").write_bytes(page.session_state["piece"]["files"]["midi"])
    assert not page.error and len(midi_to_roll(tmp_path / "piece.mid", 4).roll) == 64 + 2 * 4 * 4  # primer + 2 bars


def test_several_run_folders_give_a_model_picker(trained_runs, monkeypatch, tmp_path):
    for name in ("last", "all"):
        shutil.copytree(trained_runs[name], tmp_path / name)
    page = open_studio(monkeypatch, None, tmp_path)
    picker = page.sidebar.selectbox[0]
    assert picker.label == "Model"
    assert picker.options == [str(tmp_path / "all"), str(tmp_path / "last"), str(BUNDLED_MODEL)]
    picker.set_value(str(tmp_path / "last")).run()
    page.button[0].click().run()
    assert not page.exception and not page.error and page.session_state["piece"]


def test_a_model_that_does_not_load_or_no_model_at_all_is_a_message_on_the_page(trained_runs, monkeypatch, tmp_path):
    broken = shutil.copytree(trained_runs["all"], tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"not weights")
    page = open_studio(monkeypatch, broken, tmp_path / "nothing")
    assert not page.exception and "could not be loaded" in page.error[0].value
    assert "model.safetensors" in page.error[0].value and not page.button
    page = open_studio(monkeypatch, None, tmp_path / "nothing")
    assert not page.exception and not page.error and page.button  # the bundled model stands in
    monkeypatch.setattr(musiclstm, "BUNDLED_MODEL", tmp_path / "not-installed")
    page = open_studio(monkeypatch, None, tmp_path / "nothing")
    assert not page.exception and "No trained model found" in page.error[0].value


class Upload:
    """What Streamlit's file_uploader hands the page: a name, a size and the bytes."""

    def __init__(self, name: str, data: bytes):
        self.name, self.size, self.data = name, len(data), data

    def getvalue(self) -> bytes:
        return self.data


def test_an_uploaded_primer_is_kept_under_its_own_name_and_refused_over_the_size_limit(tmp_path):
    from musiclstm import MusicLSTMError
    from musiclstm.pages.studio import MAX_PRIMER_BYTES, saved_upload

    assert saved_upload(None, tmp_path) is None
    saved = saved_upload(Upload("../../theme.mid", b"MThd..."), tmp_path)
    assert saved == tmp_path / "theme.mid" and saved.read_bytes() == b"MThd..."
    with pytest.raises(MusicLSTMError, match="huge.mid: 1,000,001 bytes, over the 1,000,000-byte limit"):
        saved_upload(Upload("huge.mid", bytes(MAX_PRIMER_BYTES + 1)), tmp_path)


def test_harmonize_mode_keeps_the_uploaded_melody_on_top_and_asks_for_one_when_missing(bach_corpus, tmp_path):
    from musiclstm import MusicLSTMError
    from musiclstm.composing.melody import line_roll
    from musiclstm.music.piece import top_line
    from musiclstm.music.render import write_midi
    from musiclstm.pages.studio import compose

    melody = line_roll(top_line(bach_corpus.split("test")[0].roll[:32]))
    write_midi(melody, tmp_path / "tune.mid", bach_corpus.steps_per_beat)
    settings = dict(strategy="free", bars=2, seed=4)
    piece = compose(str(BUNDLED_MODEL), settings, Upload("tune.mid", (tmp_path / "tune.mid").read_bytes()), True)
    (tmp_path / "made.mid").write_bytes(piece["files"]["midi"])
    made = midi_to_roll(tmp_path / "made.mid", bach_corpus.steps_per_beat).roll
    assert np.array_equal(top_line(made), top_line(melody)) and piece["is_harmonization"]
    assert piece["primer"] == "tune.mid" and piece["files"]["png"].startswith(b"\x89PNG")
    with pytest.raises(MusicLSTMError, match="Upload a melody"):
        compose(str(BUNDLED_MODEL), settings, None, True)
