"""The ratings store: every good answer kept once, every bad one refused with nothing stored."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest

from musiclstm import DamagedStoreError, MusicLSTMError, RatingsStore
from musiclstm.listening.ratings import SCHEMA_VERSION

CLIPS = ["aa11", "bb22", "cc33"]
GOOD = {"musicality": 4, "coherence": 3, "creativity": 5}


@pytest.fixture
def store(tmp_path):
    return RatingsStore.create(tmp_path / "ratings.sqlite", CLIPS)


def test_an_answer_is_stored_with_its_three_ratings_and_guess(store):
    rater = store.new_rater()
    store.submit(rater, "bb22", GOOD, "computer")
    (answer,) = store.answers()
    assert (answer.rater_id, answer.clip_id, answer.ratings, answer.guess) == (rater, "bb22", GOOD, "computer")
    assert store.answered(rater) == {"bb22"}
    assert store.has_rater(rater) and not store.has_rater("someone-else")


def test_the_database_is_in_wal_mode_with_a_schema_version(store):
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


@pytest.mark.parametrize(
    ("ratings", "guess", "message"),
    [
        ({**GOOD, "musicality": 0}, "real", "musicality must be a whole number from 1 to 5, got 0"),
        ({**GOOD, "coherence": 6}, "real", "coherence must be a whole number from 1 to 5, got 6"),
        ({**GOOD, "creativity": 3.5}, "real", "creativity must be a whole number from 1 to 5, got 3.5"),
        ({**GOOD, "creativity": "4"}, "real", "creativity must be a whole number from 1 to 5, got '4'"),
        ({**GOOD, "creativity": True}, "real", "creativity must be a whole number"),
        ({"musicality": 4, "coherence": 3}, "real", "an answer rates exactly musicality, coherence, creativity"),
        ({**GOOD, "beauty": 2}, "real", "an answer rates exactly"),
        (GOOD, "Bach", "the guess must be one of real, computer, got 'Bach'"),
    ],
)
def test_a_bad_answer_is_refused_and_stores_nothing(store, ratings, guess, message):
    rater = store.new_rater()
    with pytest.raises(MusicLSTMError, match=message):
        store.submit(rater, "aa11", ratings, guess)
    assert store.answers() == []


def test_an_unknown_rater_or_clip_is_refused_and_stores_nothing(store):
    rater = store.new_rater()
    with pytest.raises(MusicLSTMError, match="unknown rater id 'nobody'"):
        store.submit("nobody", "aa11", GOOD, "real")
    with pytest.raises(MusicLSTMError, match="unknown clip 'zz99': not a clip of this study"):
        store.submit(rater, "zz99", GOOD, "real")
    assert store.answers() == []


def test_a_rater_is_stored_with_their_first_answer_and_not_before(store):
    raters = [store.new_rater() for _ in range(100)]  # Start pressed a hundred times
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT COUNT(*) FROM raters").fetchone()[0] == 0
    assert not store.has_rater(raters[0]) and store.answered(raters[0]) == set()
    store.submit(raters[0], "aa11", GOOD, "real")
    store.submit(raters[0], "bb22", GOOD, "real")
    with sqlite3.connect(store.path) as connection:
        assert connection.execute("SELECT id FROM raters").fetchall() == [(raters[0],)]


def test_a_replayed_submission_is_refused_and_the_first_answer_kept(store):
    rater = store.new_rater()
    store.submit(rater, "aa11", GOOD, "real")
    with pytest.raises(MusicLSTMError, match="clip aa11 was answered already by this rater"):
        store.submit(rater, "aa11", {**GOOD, "musicality": 1}, "computer")
    (answer,) = store.answers()
    assert answer.ratings == GOOD and answer.guess == "real"
    store.submit(store.new_rater(), "aa11", GOOD, "computer")  # another rater may answer the same clip
    assert len(store.answers()) == 2


def test_rater_ids_are_random_and_unguessable(store):
    ids = {store.new_rater() for _ in range(50)}
    assert len(ids) == 50 and all(len(rater) >= 16 for rater in ids)


def test_many_raters_submitting_at_once_lose_nothing(store):
    raters = [store.new_rater() for _ in range(12)]
    errors = []

    def rate(rater):
        try:
            for clip in CLIPS:
                store.submit(rater, clip, GOOD, "real")
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=rate, args=(rater,)) for rater in raters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.answers()) == len(raters) * len(CLIPS)


def test_an_answer_survives_the_process_that_stored_it_being_killed(store):
    rater = store.new_rater()
    script = (
        "import os, signal, sys\n"
        "from musiclstm import RatingsStore\n"
        f"RatingsStore({str(store.path)!r}).submit({rater!r}, 'cc33', {GOOD!r}, 'real')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == -9
    assert [(answer.clip_id, answer.ratings) for answer in store.answers()] == [("cc33", GOOD)]


def test_a_missing_database_or_a_newer_schema_is_named(tmp_path, store):
    with pytest.raises(MusicLSTMError, match="no ratings database"):
        RatingsStore(tmp_path / "elsewhere.sqlite")
    with sqlite3.connect(store.path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(MusicLSTMError, match=f"ratings schema version {SCHEMA_VERSION + 1}"):
        RatingsStore(store.path)
    with pytest.raises(MusicLSTMError, match="is already there; it is never replaced"):
        RatingsStore.create(store.path, CLIPS)


def test_a_store_truncated_under_its_users_is_named_as_damaged(store):
    rater = store.new_rater()
    store.path.write_bytes(b"")
    for use in (lambda: store.answered(rater), lambda: store.submit(rater, "aa11", GOOD, "real"), store.answers):
        with pytest.raises(DamagedStoreError, match=rf"{store.path}: damaged ratings store \(no such table: \w+\)"):
            use()
    with pytest.raises(MusicLSTMError, match="ratings schema version 0"):
        RatingsStore(store.path)


def test_a_dropped_table_or_a_file_that_is_no_database_is_named_on_opening(store):
    with sqlite3.connect(store.path) as connection:
        connection.execute("DROP TABLE answers")
    with pytest.raises(DamagedStoreError, match=rf"{store.path}: damaged ratings store \(no table answers\)"):
        RatingsStore(store.path)
    for journal in store.path.parent.glob("ratings.sqlite-*"):  # the WAL would still hold the pages
        journal.unlink()
    store.path.write_bytes(b"these are not answers" * 100)
    with pytest.raises(
        DamagedStoreError, match=rf"{store.path}: cannot open the ratings database \(file is not a database\)"
    ):
        RatingsStore(store.path)


def test_a_stored_row_no_submit_could_make_is_named_as_damaged(store):
    with sqlite3.connect(store.path) as connection:  # a table remade without its checks, and a bad row
        connection.execute("ALTER TABLE answers RENAME TO old")
        connection.execute("CREATE TABLE answers AS SELECT * FROM old WHERE 0")
        connection.execute("INSERT INTO answers VALUES ('r', 'aa11', 'five', 3, 9, 'maybe', 'now')")
    with pytest.raises(
        DamagedStoreError, match=r"damaged ratings store \(answer 1: ratings \['five', 3, 9\], guess 'maybe'\)"
    ):
        store.answers()
