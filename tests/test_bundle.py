"""The model that ships in the package, and `export`, which packs a run the way it was packed."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TICKS_PER_BEAT, write_midi
from safetensors import safe_open

from musiclstm import (
    BUNDLED_MODEL,
    CorpusConfig,
    MusicLSTMError,
    build_corpus,
    bundled_model,
    evaluate,
    export_model,
    generate,
    load_corpus,
    open_composer,
    save_pieces,
    write_json_atomically,
)
from musiclstm.cli import build_parser, main, model_config
from musiclstm.config import scale_pitch_classes
from musiclstm.network.bundle import CardFacts, model_card, portable_path, train_command
from musiclstm.network.reading import as_events, encode
from musiclstm.network.run import model_config_of


def test_the_bundled_model_composes_a_short_piece_in_key_from_a_held_out_chorale():
    composition = generate(bundled_model(), length=32, key="G", scale="major", seed=0)
    assert composition.rolls.shape == (1, 64 + 32, 88) and "(held out)" in composition.primer_sources[0]
    continuation = composition.rolls[0, 64:]
    density = continuation.sum(axis=1).mean()
    assert 1 <= density <= 6
    played = {(21 + key) % 12 for key in np.flatnonzero(continuation.any(axis=0))}
    assert played <= set(scale_pitch_classes("G", "major"))


def test_the_bundled_weights_match_the_checksum_in_the_model_card_and_fit_the_size_limit():
    weights = BUNDLED_MODEL / "model.safetensors"
    card = (BUNDLED_MODEL / "MODEL_CARD.md").read_text()
    (recorded,) = re.findall(r"sha256: `([0-9a-f]{64})`", card)
    assert hashlib.sha256(weights.read_bytes()).hexdigest() == recorded  # a changed model is a deliberate change
    assert weights.stat().st_size <= 15_000_000
    with safe_open(weights, "pt") as tensors:
        assert {tensors.get_tensor(name).dtype for name in tensors.keys()} == {torch.float16}


def test_the_bundled_model_beats_both_baselines_on_its_held_out_chorales():
    report = json.loads((BUNDLED_MODEL / "evaluation.json").read_text())
    baselines = report["baselines"]
    assert report["split"] == "test" and report["nll"] < baselines["previous_step"]["nll"] - 1
    assert report["nll"] < baselines["marginal"]["nll"] - 1
    assert 2 <= report["generated"]["generated"]["note_density"] <= 4  # the seed's density target


def test_generate_without_a_model_uses_the_bundled_one(tmp_path, capsys):
    assert main(["generate", "--out", str(tmp_path), "--length", "16", "--no-audio", "--seed", "3"]) == 0
    saved = json.loads((tmp_path / "piece_1.json").read_text())
    assert saved["settings"]["model"] == str(BUNDLED_MODEL) and "(held out)" in saved["primer"]
    assert "Wrote 1 piece(s)" in capsys.readouterr().out


def test_export_packs_a_run_that_composes_without_its_corpus(trained_runs, bach_corpus, tmp_path):
    run = shutil.copytree(trained_runs["all"], tmp_path / "run")
    out = export_model(run, tmp_path / "packed")
    assert sorted(path.name for path in out.iterdir()) == [
        "MODEL_CARD.md", "config.json", "corpus", "history.csv", "history.png", "model.safetensors",
    ]  # fmt: skip
    original, packed = open_composer(run), open_composer(out)
    piece = bach_corpus.split("test")[0]
    rows = encode(as_events(piece.roll, piece.onsets)[:64], 0, original.model.config.inputs, piece.grid)[None]
    with torch.inference_mode():
        assert torch.allclose(original.model(rows)[0], packed.model(rows)[0], atol=0.02)  # float16 weights
    kept = load_corpus(out / "corpus")
    assert [(piece.name, piece.split) for piece in kept] == [(piece.name, piece.split) for piece in bach_corpus]
    for copied, piece in zip(kept, bach_corpus, strict=True):  # the struck keys and the metre came along
        assert np.array_equal(copied.onsets, piece.onsets) and copied.grid == piece.grid
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["corpus"] == "corpus"
    composition = generate(out, length=8, seed=1)
    assert "(held out)" in composition.primer_sources[0]
    assert composition.novelty[0]["longest_shared_steps"] >= 0  # the train pieces came along
    card = (out / "MODEL_CARD.md").read_text()
    assert hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest() in card


def test_export_replaces_an_older_folder_whole_and_names_a_bad_run(trained_runs, tmp_path):
    out = tmp_path / "packed"
    out.mkdir()
    (out / "stale.txt").write_text("from an older export")
    export_model(trained_runs["last"], out)
    assert not (out / "stale.txt").exists() and (out / "model.safetensors").is_file()
    assert main(["export", "--run", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists()
    with pytest.raises(MusicLSTMError, match="not a model folder"):
        export_model(tmp_path / "nothing", tmp_path / "y")


def test_evaluating_on_a_corpus_of_held_out_pieces_alone_says_to_use_the_whole_corpus(bach_corpus, tmp_path):
    from musiclstm import evaluate
    from musiclstm.data.corpus import write_corpus

    held_out = [piece for piece in bach_corpus if piece.split != "train"]  # what older exports kept
    pieces = [piece.piece for piece in held_out]
    stored = ("format_version", "musiclstm_version", "rolls_file", "total_frames", "pieces", "skipped")
    settings = {key: value for key, value in bach_corpus.manifest.items() if key not in stored}
    write_corpus(tmp_path / "held_out", pieces, [piece.split for piece in held_out], settings)
    with pytest.raises(MusicLSTMError, match="no train split to fit the baselines on; use the whole corpus"):
        evaluate(tmp_path / "held_out")


def test_the_model_card_of_a_chorale_run_tells_its_own_data_command_and_music(
    trained_runs, bach_corpus, tmp_path, monkeypatch, capsys
):
    monkeypatch.chdir(tmp_path)  # the card gives paths from here: data/bach and runs/mine
    corpus = shutil.copytree(bach_corpus.path, tmp_path / "data" / "bach")
    run = shutil.copytree(trained_runs["all"], tmp_path / "runs" / "mine")
    settings = json.loads((run / "config.json").read_text())
    settings["data"]["corpus"] = str(corpus)
    write_json_atomically(run / "config.json", settings)
    save_pieces(generate(run, length=16, num_outputs=2, strategy="free", seed=3), tmp_path / "pieces", audio=False)
    report = evaluate(corpus, run, generated=tmp_path / "pieces", plots=tmp_path / "plots")
    write_json_atomically(tmp_path / "evaluation.json", report)
    out = export_model(run, tmp_path / "packed", tmp_path / "evaluation.json")
    card = (out / "MODEL_CARD.md").read_text()
    assert card.startswith("# Model card: a model of the Bach chorales\n") and "Four-part chorales only" in card
    assert "4 steps per beat (sixteenth notes)" in card and "## Held-out test chorales" in card
    assert "(2 pieces of 16 steps, composed with `--strategy free --choose threshold`: no key mask" in card
    data, train = re.search(r"- Command: `(musiclstm data [^`]*)`, then `(musiclstm train [^`]*)`;", card).groups()
    assert data == "musiclstm data --source bach --out data/bach --steps-per-beat 4 --limit 12"
    assert train.startswith("musiclstm train --data data/bach --out runs/mine --lstm-units 64 --dense-units 32")
    assert "--chunk 32" in train and "--epochs 2" in train
    for file in ("MODEL_CARD.md", "config.json", "corpus/manifest.json", "evaluation.json"):
        assert str(tmp_path) not in (out / file).read_text(), file  # no path of this machine
    assert json.loads((out / "evaluation.json").read_text())["plots"] == ["plots/generated_vs_real.png"]
    assert json.loads((out / "corpus" / "manifest.json").read_text())["copied_from"] == "data/bach"
    args = build_parser().parse_args(shlex.split(train)[1:])  # a command the command line takes
    assert model_config(args) == model_config_of(settings) and (args.data, args.out) == ("data/bach", "runs/mine")
    assert main([*shlex.split(data)[1:], "--json"]) == 0  # the same source and settings: the corpus is reused
    assert json.loads(capsys.readouterr().out)["reused"] is True


def test_an_absolute_path_outside_the_current_folder_is_recorded_by_its_name(trained_runs, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = json.loads((trained_runs["all"] / "config.json").read_text())
    settings["data"]["corpus"] = "/somewhere/else/my corpus"
    assert train_command(settings, Path("/home/someone/runs/seven")).startswith(
        "`musiclstm train --data 'my corpus' --out seven "
    )
    assert portable_path("/somewhere/else/songs") == "songs" and portable_path(tmp_path / "a" / "b") == "a/b"
    assert portable_path("bach") == "bach" and portable_path("runs/x") == "runs/x"


def test_the_model_card_of_a_midi_folder_run_says_nothing_of_bach(trained_runs, tmp_path):
    for index in range(4):
        notes = [(60 + index, 0, TICKS_PER_BEAT), (64, TICKS_PER_BEAT, 2 * TICKS_PER_BEAT)]
        write_midi(tmp_path / "songs" / f"song{index}.mid", notes)
    build_corpus(CorpusConfig(str(tmp_path / "songs"), steps_per_beat=2), tmp_path / "corpus")
    settings = json.loads((trained_runs["all"] / "config.json").read_text())
    facts = CardFacts(settings, load_corpus(tmp_path / "corpus"), [], None, None, "`make my-model`")
    card = model_card(facts, "0" * 64)
    assert card.startswith("# Model card: a model of songs\n") and "2 steps per beat (eighth notes)" in card
    assert "It knows only the music of" in card and "Command: `make my-model`" in card
    assert "Bach" not in card and "chorale" not in card
    assert "It knows only the music of `songs` (4 pieces)" in card and str(tmp_path) not in card


def test_the_command_of_a_run_from_before_the_choice_of_head_names_the_independent_head(trained_runs, tmp_path):
    settings = json.loads((trained_runs["all"] / "config.json").read_text())
    del settings["model"]["head"]  # as config.json was written before there was a choice of head
    assert "--head independent" in train_command(settings, tmp_path)
    settings["model"]["head"] = "nade"
    assert "--head" not in train_command(settings, tmp_path)
