"""Preparing a listening test: clips that give nothing away, an answer key kept apart, nothing half-made."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from musiclstm import MusicLSTMError, midi_to_roll, open_study, prepare_study
from musiclstm.cli import main
from musiclstm.listening.study import (
    SAMPLE_RATE_HZ,
    count_real_passages,
    level_clips,
    read_answer_key,
    read_wav,
    real_passages,
)

CONSOLE = str(Path(sys.executable).with_name("musiclstm"))


@pytest.fixture(scope="module")
def study(trained_runs, bach_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("studies") / "study"
    return prepare_study(out, trained_runs["all"], bach_corpus.path, pieces=2, bars=2, seed=3)


def test_a_study_holds_as_many_generated_as_real_clips_under_random_ids(study, bach_corpus):
    key = read_answer_key(study)
    assert sorted(entry["source"] for entry in key.values()) == ["generated", "generated", "real", "real"]
    assert all(len(clip) == 8 and int(clip, 16) >= 0 for clip in study.clip_ids)
    held_out = {piece.name for piece in bach_corpus.split("test") + bach_corpus.split("valid")}
    real = [entry["origin"] for entry in key.values() if entry["source"] == "real"]
    assert all(origin.split(",")[0] in held_out for origin in real)
    page_knows = (study.folder / "study.json").read_text()
    assert "generated" not in page_knows and not any(entry["origin"] in page_knows for entry in key.values())
    assert study.real_name == "Bach" and study.info["bars"] == 2


def test_every_clip_has_the_same_length_and_loudness(study):
    waves = [read_wav(study.clip_path(clip)) for clip in study.clip_ids]
    seconds = study.info["seconds_per_clip"]
    assert {len(samples) for samples in waves} == {round(seconds * SAMPLE_RATE_HZ)}
    loudness = [np.sqrt(np.mean(samples**2)) for samples in waves]
    assert max(loudness) - min(loudness) < 0.002 and min(loudness) > 0.01
    assert all(np.abs(samples[-10:]).max() < 0.01 for samples in waves)  # faded out


def test_a_real_clip_is_its_held_out_passage_and_a_generated_one_is_bars_long(study, bach_corpus):
    key = read_answer_key(study)
    steps = 2 * 4 * bach_corpus.steps_per_beat
    for clip, entry in key.items():
        roll = midi_to_roll(study.folder / "midi" / f"{clip}.mid", bach_corpus.steps_per_beat).roll
        assert len(roll) <= steps
        if entry["source"] == "real":
            piece, start = where_from(bach_corpus, entry["origin"])
            passage = piece.roll[start : start + steps]
            assert np.array_equal(roll, passage[: len(roll)]) and not passage[len(roll) :].any()


def where_from(corpus, origin: str):
    """The stored piece and the start step that a real passage's origin names ("bwv10.7, bars 3-4 (test)")."""
    name, bars = origin.split(", bars ")
    first = int(bars.split("-")[0])
    (piece,) = [piece for piece in corpus if piece.name == name]
    start = piece.piece.bar_span(first, first)[0]
    assert start in piece.grid.bar_starts(piece.frames)  # a bar line, never a pickup's first step
    return piece, start


def test_each_rater_gets_their_own_order_and_keeps_it(study):
    first, second = study.order_for("rater-one"), study.order_for("rater-two")
    assert sorted(first) == sorted(study.clip_ids) == sorted(second)
    assert study.order_for("rater-one") == first
    orders = {tuple(study.order_for(f"rater-{n}")) for n in range(40)}
    assert len(orders) > 10  # 24 orders of 4 clips: raters do not share one


def test_the_held_out_pieces_hold_the_same_count_of_passages_whatever_the_seed(bach_corpus):
    """8 bars are 128 steps. Test: bwv10.7 (352 steps from a bar line) holds 2, bwv110.7 (176, a pickup of 4) 1;
    valid: bwv103.6 (192, a pickup) 1, bwv112.5 (224, a pickup) 1."""
    steps = 8 * 4 * bach_corpus.steps_per_beat
    assert count_real_passages(bach_corpus, steps) == 5
    for seed in range(6):
        assert len(real_passages(bach_corpus, 5, steps, np.random.default_rng(seed))) == 5
        with pytest.raises(MusicLSTMError, match=r"hold only 5 passages of 8 bars .*, 6 are needed; ask for fewer"):
            real_passages(bach_corpus, 6, steps, np.random.default_rng(seed))


def test_real_passages_come_from_the_test_split_then_valid_one_per_piece_first(bach_corpus):
    steps = 8 * 4 * bach_corpus.steps_per_beat
    draw = np.random.default_rng(1)
    two = [where_from(bach_corpus, origin)[0] for origin, _ in real_passages(bach_corpus, 2, steps, draw)]
    assert sorted(piece.name for piece in two) == ["bwv10.7", "bwv110.7"]  # the test split's two pieces
    four = [where_from(bach_corpus, origin)[0] for origin, _ in real_passages(bach_corpus, 4, steps, draw)]
    assert sorted(piece.split for piece in four) == ["test", "test", "valid", "valid"]
    assert len({piece.name for piece in four}) == 4
    five = [where_from(bach_corpus, origin)[0].name for origin, _ in real_passages(bach_corpus, 5, steps, draw)]
    assert sorted(five).count("bwv10.7") == 2  # the one piece long enough for two gives its second last


def test_real_passages_start_on_bar_lines_and_never_overlap(bach_corpus):
    steps = 2 * 4 * bach_corpus.steps_per_beat  # two bars
    count = count_real_passages(bach_corpus, steps)
    assert count == 27  # 11 + 5 in the test split, 5 + 6 in valid
    chosen = real_passages(bach_corpus, count, steps, np.random.default_rng(0))
    starts = {}
    for origin, roll in chosen:
        piece, start = where_from(bach_corpus, origin)
        assert np.array_equal(roll, piece.roll[start : start + steps]) and origin.endswith(f"({piece.split})")
        starts.setdefault(piece.name, []).append(start)
    assert sorted(len(found) for found in starts.values()) == [5, 5, 6, 11]
    for found in starts.values():
        found.sort()
        assert all(later - earlier >= steps for earlier, later in zip(found, found[1:], strict=False))


def test_level_clips_cuts_pads_and_matches_loudness():
    rate = SAMPLE_RATE_HZ
    loud = 0.8 * np.sin(np.arange(3 * rate) / 10)
    quiet = 0.05 * np.sin(np.arange(rate) / 7)
    levelled = level_clips([loud, quiet], seconds=2.0)
    assert [len(samples) for samples in levelled] == [2 * rate, 2 * rate]
    assert np.sqrt(np.mean(levelled[0] ** 2)) == pytest.approx(np.sqrt(np.mean(levelled[1] ** 2)))
    assert max(np.abs(samples).max() for samples in levelled) <= 0.99


def test_prepare_refuses_a_folder_in_use_and_leaves_nothing_when_it_fails(trained_runs, bach_corpus, tmp_path):
    used = tmp_path / "used"
    used.mkdir()
    (used / "ratings.sqlite").write_text("someone's answers")
    with pytest.raises(MusicLSTMError, match="already holds files"):
        prepare_study(used, trained_runs["all"], bach_corpus.path, pieces=1, bars=1)
    (tmp_path / ".new.staging-of-a-killed-run" / "study").mkdir(parents=True)  # SIGKILL cleans nothing up
    (tmp_path / ".new.lock").write_text("")
    with pytest.raises(MusicLSTMError, match=r"hold only 27 passages of 2 bars .*, 500 are needed"):
        prepare_study(tmp_path / "new", trained_runs["all"], bach_corpus.path, pieces=500, bars=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["used"]
    with pytest.raises(MusicLSTMError, match="not a study folder"):
        open_study(used)


def test_the_listen_commands_prepare_and_report(trained_runs, bach_corpus, tmp_path, capsys):
    out = tmp_path / "cli_study"
    command = ["listen", "prepare", "--model", str(trained_runs["all"]), "--data", str(bach_corpus.path)]
    assert main([*command, "--out", str(out), "--pieces", "1", "--bars", "1", "--real-name", "J. S. Bach"]) == 0
    assert "Wrote a study of 2 clips" in capsys.readouterr().out
    study = open_study(out)
    rater = study.ratings.new_rater()
    for clip in study.clip_ids:
        study.ratings.submit(rater, clip, {"musicality": 3, "coherence": 4, "creativity": 2}, "computer")
    files = [tmp_path / "report.json", tmp_path / "ratings.csv", tmp_path / "ratings.png"]
    assert (
        main(["listen", "report", str(out), "--json", str(files[0]), "--csv", str(files[1]), "--plot", str(files[2])])
        == 0
    )
    printed = capsys.readouterr().out
    assert "2 answers by 1 rater on 2 clips" in printed and "'J. S. Bach or computer?': 1 of 2 right" in printed
    assert json.loads(files[0].read_text())["answers"] == 2 and all(path.is_file() for path in files)
    assert main(["listen", "serve", str(tmp_path)]) == 2
    assert "not a study folder (no study.json)" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(pieces="3"), "pieces must be a whole number from 1 to 500, got '3'"),
        (dict(pieces=501), "pieces must be from 1 to 500, got 501"),
        (dict(bars=2.5), "bars must be a whole number from 1 to 64, got 2.5"),
        (dict(seed=-1), "seed must be from 0 to 4,294,967,295, got -1"),
        (dict(seed=2**32), "seed must be from 0 to 4,294,967,295, got 4,294,967,296"),
    ],
)
def test_prepare_refuses_bad_counts_and_seeds_by_name_before_any_work(tmp_path, arguments, message):
    with pytest.raises(MusicLSTMError, match=message):  # the model does not exist: no work was begun
        prepare_study(tmp_path / "study", tmp_path / "no-model", **arguments)
    assert list(tmp_path.iterdir()) == []


def test_listen_prepare_refuses_a_negative_seed_and_makes_nothing(tmp_path):
    done = subprocess.run(
        [CONSOLE, "listen", "prepare", "--out", str(tmp_path / "study"), "--seed", "-1"], capture_output=True, text=True
    )
    assert (done.returncode, done.stderr) == (2, "musiclstm: error: seed must be from 0 to 4,294,967,295, got -1\n")
    assert list(tmp_path.iterdir()) == []


def wait_for(paths, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not any(True for _ in paths()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


@pytest.mark.parametrize(("sent", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_second_prepare_is_refused_and_a_signalled_one_leaves_nothing_behind(tmp_path, sent, status):
    """Two prepares into one folder: the second is refused at once; the first, signalled while it renders
    in its staging folder, removes it (a full study's staging holds 135 MB) and its lock."""
    out = tmp_path / "study"
    command = [CONSOLE, "listen", "prepare", "--out", str(out), "--pieces", "4", "--bars", "2", "--seed", "1"]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: tmp_path.glob(".study.lock"), first)
    second = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    assert second.stderr == (
        f"musiclstm: error: another listen prepare is writing {out}; wait for it to end, or choose another --out\n"
    )
    wait_for(lambda: tmp_path.glob(".study.staging-*/study/midi/*.mid"), first)
    first.send_signal(sent)
    stderr = first.communicate(timeout=60)[1]
    assert first.returncode == status, stderr
    assert "musiclstm: interrupted" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []
