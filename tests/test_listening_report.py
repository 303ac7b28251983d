"""The listening test's report: its statistics against hand-computed values, its verdicts, CSV and plot."""

from __future__ import annotations

import csv
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from musiclstm import MusicLSTMError, format_study_report, plot_ratings, study_report, write_ratings_csv
from musiclstm.listening.report import binomial_p_value, bootstrap_interval, verdict

SOURCES = {"g1": "generated", "g2": "generated", "r1": "real", "r2": "real"}


@pytest.fixture
def study(silent_study):
    return silent_study


def rate(study, rater: str, clip: str, musicality: int, coherence: int, creativity: int, guess: str) -> None:
    study.ratings.submit(rater, clip, dict(musicality=musicality, coherence=coherence, creativity=creativity), guess)


def test_the_report_gives_hand_computed_means_counts_and_guess_accuracy(study):
    first, second = study.ratings.new_rater(), study.ratings.new_rater()
    rate(study, first, "g1", 2, 3, 4, "computer")  # right
    rate(study, first, "r1", 5, 5, 3, "real")  # right
    rate(study, second, "g1", 4, 1, 2, "real")  # wrong
    rate(study, second, "g2", 3, 2, 3, "computer")  # right
    report = study_report(study)
    generated, real = report["ratings"]["generated"], report["ratings"]["real"]
    assert generated["musicality"]["mean"] == pytest.approx((2 + 4 + 3) / 3)
    assert generated["coherence"]["mean"] == pytest.approx((3 + 1 + 2) / 3)
    assert generated["average"]["mean"] == pytest.approx((9 + 7 + 8) / 9)
    assert (
        generated["musicality"]["raters"],
        generated["musicality"]["clips"],
        generated["musicality"]["ratings"],
    ) == (
        2,
        2,
        3,
    )
    assert real["creativity"]["mean"] == 3 and real["creativity"]["ratings"] == 1
    for source in (generated, real):
        for row in source.values():
            low, high = row["interval"]
            assert low <= row["mean"] <= high
    guesses = report["guesses"]
    assert (guesses["correct"], guesses["answers"], guesses["accuracy"]) == (3, 4, 0.75)
    assert guesses["p_value"] == pytest.approx(10 / 16)  # two-sided: P(X<=1) + P(X>=3) for 4 fair coins
    assert guesses["generated_taken_for_real"] == pytest.approx(1 / 3) and guesses["real_taken_for_real"] == 1
    assert report["raters"] == 2 and not report["enough_raters"]
    assert set(report["target"]["verdicts"].values()) == {"too few raters"}
    text = format_study_report(report)
    assert "too few raters to conclude (2 of the 5 or more" in text
    assert "'Bach or computer?': 3 of 4 right (75%)" in text


def test_the_bootstrap_interval_of_one_rater_and_two_clips_is_the_range_of_clip_resamples():
    # resampling clips {2, 4}: means 2, 3, 4 with chances 1/4, 1/2, 1/4, so the 95% interval is [2, 4]
    low, high = bootstrap_interval(np.array([2.0, 4.0]), np.array([0, 0]), np.array([0, 1]), samples=4000)
    assert (low, high) == (2.0, 4.0)
    same = bootstrap_interval(np.full(6, 3.0), np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 0, 1, 0, 1]))
    assert same == (3.0, 3.0)


def test_the_bootstrap_interval_contains_the_mean_and_narrows_with_more_raters():
    rng = np.random.default_rng(1)
    widths = []
    for n_raters in (5, 80):
        raters, clips = np.repeat(np.arange(n_raters), 10), np.tile(np.arange(10), n_raters)
        values = np.clip(np.round(3 + rng.normal(0, 1, n_raters)[raters] + rng.normal(0, 1, len(raters))), 1, 5)
        low, high = bootstrap_interval(values, raters, clips)
        assert low < values.mean() < high
        widths.append(high - low)
    assert widths[1] < widths[0]


def test_the_binomial_p_value_of_known_cases():
    assert binomial_p_value(9, 10) == pytest.approx(22 / 1024)  # 2 x (C(10,9) + C(10,10)) / 2^10
    assert binomial_p_value(5, 10) == pytest.approx(1.0)
    assert binomial_p_value(0, 3) == pytest.approx(2 / 8)


@pytest.mark.parametrize(
    ("interval", "raters", "expected"),
    [
        ((3.6, 4.2), 5, "passed"),
        ((2.1, 3.5), 5, "failed"),
        ((3.2, 3.9), 12, "undecided"),
        ((3.6, 4.2), 4, "too few raters"),
    ],
)
def test_the_target_of_3_5_is_judged_by_the_whole_interval(interval, raters, expected):
    assert verdict(interval, raters) == expected


def test_five_raters_who_all_love_the_generated_clips_pass_the_target(study):
    for _ in range(5):
        rater = study.ratings.new_rater()
        for clip in SOURCES:
            rate(study, rater, clip, 5, 5, 4, "real")
    report = study_report(study)
    assert report["enough_raters"] and report["answers"] == 20
    assert report["target"]["verdicts"] == {q: "passed" for q in ("musicality", "coherence", "creativity", "average")}
    assert report["guesses"]["accuracy"] == 0.5


def test_the_csv_holds_every_answer_with_its_source_and_the_plot_is_drawn(study, tmp_path):
    rater = study.ratings.new_rater()
    rate(study, rater, "r2", 1, 2, 3, "computer")
    rate(study, rater, "g2", 4, 4, 4, "computer")
    with open(write_ratings_csv(study, tmp_path / "ratings.csv"), newline="") as file:
        rows = list(csv.DictReader(file))
    assert [(row["clip"], row["source"], row["origin"], row["musicality"], row["correct"]) for row in rows] == [
        ("r2", "real", "origin of r2", "1", "0"),
        ("g2", "generated", "origin of g2", "4", "1"),
    ]
    assert plot_ratings(study, tmp_path / "ratings.png").read_bytes().startswith(b"\x89PNG")


def test_a_study_without_answers_reports_no_ratings(study):
    report = study_report(study)
    assert report["answers"] == 0 and report["guesses"]["accuracy"] is None
    assert report["ratings"]["generated"]["musicality"]["mean"] is None
    assert "no ratings" in format_study_report(report)


def test_the_report_takes_a_study_folder_and_refuses_anything_else_by_name(study):
    rate(study, study.ratings.new_rater(), "g1", 2, 3, 4, "computer")
    assert study_report(str(study.folder))["answers"] == study_report(study.folder)["answers"] == 1
    with pytest.raises(MusicLSTMError, match="study must be a Study or a study folder's path, got int 3"):
        study_report(3)
    with pytest.raises(MusicLSTMError, match="not a study folder"):
        study_report(study.folder / "clips")


def answer_an_unknown_clip(study) -> None:
    with sqlite3.connect(study.ratings.path) as connection:
        connection.execute("INSERT INTO clips (id) VALUES ('zz99')")
    rate(study, study.ratings.new_rater(), "zz99", 2, 3, 4, "computer")


def drop_the_answers(study) -> None:
    with sqlite3.connect(study.ratings.path) as connection:
        connection.execute("DROP TABLE answers")


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        (answer_an_unknown_clip, r"answers to 1 clip\(s\) the study does not have: 'zz99'"),
        (drop_the_answers, "no table answers"),
    ],
)
def test_listen_report_on_a_damaged_store_names_the_file_and_the_damage(study, damage, what):
    damage(study)
    console = str(Path(sys.executable).with_name("musiclstm"))
    done = subprocess.run([console, "listen", "report", str(study.folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.startswith(f"musiclstm: error: {study.ratings.path}: damaged ratings store (")
    assert re.search(what, done.stderr), done.stderr
