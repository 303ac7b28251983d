"""Settings: one frozen object each, checked in one place, objective defaults resolved only when used."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest

import musiclstm
from musiclstm import CorpusConfig, GenerationSettings, ModelConfig, MusicLSTMError, TrainConfig


def test_replacing_the_objective_gives_the_seeds_batch_and_patiences():
    seed_like = replace(TrainConfig(), objective="last").resolved()
    assert (seed_like.batch_size, seed_like.early_stop_patience, seed_like.lr_patience) == (64, 5, 3)
    fast = TrainConfig().resolved()
    assert (fast.objective, fast.batch_size, fast.early_stop_patience, fast.lr_patience) == ("all", 8, 20, 10)
    assert TrainConfig().batch_size is None  # unresolved until training starts
    given = TrainConfig(objective="last", batch_size=8, early_stop_patience=2).resolved()
    assert (given.batch_size, given.early_stop_patience, given.lr_patience) == (8, 2, 3)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: TrainConfig(objective="next"), "unknown objective 'next'"),
        (lambda: TrainConfig(lr=math.nan), "pos_weight and lr must be positive"),
        (lambda: TrainConfig(batch_size=0), "batch_size must be at least 1"),
        (lambda: ModelConfig(lstm_units=0), "lstm_units must be a whole number"),
        (lambda: ModelConfig(dense_dropout=1.0), r"dense_dropout must be in \[0, 1\)"),
        (lambda: CorpusConfig("bach", split_fractions=(0.5, 0.5, 0.5)), "split fractions must be three"),
        (lambda: GenerationSettings(tempo_bpm=0), "tempo must be between 20 and 400"),
        (lambda: GenerationSettings(tempo_bpm=math.nan), "tempo must be between 20 and 400"),
        (lambda: GenerationSettings(temperature=math.inf), "temperature must be above 0 and finite"),
        (lambda: GenerationSettings(key="H"), "unknown key 'H'"),
    ],
)
def test_a_bad_setting_is_refused_by_name(make, message):
    with pytest.raises(MusicLSTMError, match=message):
        make()


def test_a_strategy_fills_in_temperature_and_scale_and_a_missing_seed_is_drawn():
    settings = GenerationSettings(strategy="jazz")
    assert (settings.effective_temperature, settings.effective_scale) == (0.9, "blues")
    assert isinstance(settings.seed, int)
    assert GenerationSettings(strategy="free", temperature=1.5).effective_temperature == 1.5


@pytest.mark.parametrize(
    "settings_class",
    [
        CorpusConfig,
        ModelConfig,
        TrainConfig,
        GenerationSettings,
        musiclstm.EvaluateConfig,
        musiclstm.StudyConfig,
        musiclstm.ServingConfig,
        musiclstm.OutputConfig,
        musiclstm.ExportConfig,
    ],
)
def test_every_user_setting_carries_its_help_for_the_command_line(settings_class):
    # fixed by the seed's schedule; and the inputs the network reads, only the keys until more exist
    internal = {"lr_factor", "min_lr", "inputs"}
    undocumented = [f.name for f in fields(settings_class) if not f.metadata.get("help") and f.name not in internal]
    assert undocumented == []
