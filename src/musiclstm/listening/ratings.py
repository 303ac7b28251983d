"""Keep a listening test's answers in SQLite, so that no submitted answer is ever lost or doubled.

One answer is one rater's judgement of one clip: the specification's three ratings (1-5) and a guess
at its source ("real" or "computer"). The database lives in the study folder, in WAL mode with full
sync, and each answer is stored in one transaction before the page moves on: a second rater
submitting at the same moment waits for the lock, a killed server loses nothing committed, a page
reloaded mid-clip has stored nothing for that clip. Bad input (a rating outside 1-5, an unknown
clip, a malformed rater id, a second answer to the same clip) is refused with a `MusicLSTMError`
and stores nothing. A rater is stored with their first answer, never before: pressing Start stores
nothing, so the raters table grows only with answers. A database that SQLite cannot read, or that
lacks a table, is a `DamagedStoreError` naming the file. The schema's version is SQLite's `user_version`.
"""

from __future__ import annotations

import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

from musiclstm.config import MusicLSTMError

QUESTIONS = ("musicality", "coherence", "creativity")  # the specification's three ratings, each 1-5
GUESSES = ("real", "computer")
RATING_RANGE = (1, 5)
SCHEMA_VERSION = 1
BUSY_TIMEOUT_SECONDS = 30
RATER_ID = re.compile(r"[A-Za-z0-9_-]{16}")  # what secrets.token_urlsafe(12) makes
TABLES = ("clips", "raters", "answers")
CHECK_RATING = f"INTEGER NOT NULL CHECK ({{}} BETWEEN {RATING_RANGE[0]} AND {RATING_RANGE[1]})"
SCHEMA = f"""
CREATE TABLE clips (id TEXT PRIMARY KEY);
CREATE TABLE raters (id TEXT PRIMARY KEY, created_at TEXT NOT NULL);
CREATE TABLE answers (
    rater_id TEXT NOT NULL REFERENCES raters(id),
    clip_id TEXT NOT NULL REFERENCES clips(id),
    {", ".join(f"{question} {CHECK_RATING.format(question)}" for question in QUESTIONS)},
    guess TEXT NOT NULL CHECK (guess IN ({", ".join(f"'{guess}'" for guess in GUESSES)})),
    submitted_at TEXT NOT NULL,
    PRIMARY KEY (rater_id, clip_id)
);
PRAGMA user_version = {SCHEMA_VERSION};
"""


@dataclass(frozen=True)
class Answer:
    rater_id: str
    clip_id: str
    ratings: dict[str, int]  # question: 1-5
    guess: str  # "real" or "computer"
    submitted_at: str


class DamagedStoreError(MusicLSTMError):
    """The ratings database cannot be used as one: unreadable, truncated, a table gone, or a bad row."""


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


class RatingsStore:
    """The answers of one study, in its `ratings.sqlite`. Safe to use from many threads and processes:
    every call opens its own connection."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise MusicLSTMError(
                f"{self.path}: no ratings database; was the study made with 'musiclstm listen prepare'?"
            )
        with self.connection() as connection:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version != SCHEMA_VERSION:
            raise MusicLSTMError(
                f"{self.path}: ratings schema version {version}, this musiclstm reads version {SCHEMA_VERSION}"
            )
        if missing := [table for table in TABLES if table not in tables]:
            raise DamagedStoreError(f"{self.path}: damaged ratings store (no table {', '.join(missing)})")

    @classmethod
    def create(cls, path: str | Path, clip_ids: list[str]) -> RatingsStore:
        """Make the database of a new study, knowing its clips."""
        path = Path(path)
        if path.exists():
            raise MusicLSTMError(f"{path}: a ratings database is already there; it is never replaced")
        connection = sqlite3.connect(path, isolation_level=None)
        with closing(connection):
            connection.execute("PRAGMA journal_mode = WAL")
            connection.executescript(f"BEGIN; {SCHEMA} COMMIT;")
            connection.executemany("INSERT INTO clips (id) VALUES (?)", [(clip,) for clip in clip_ids])
        return cls(path)

    def connect(self) -> sqlite3.Connection:
        """A connection in autocommit mode (transactions are explicit), waiting for a busy lock, syncing fully."""
        try:
            connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None)
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as err:
            raise DamagedStoreError(f"{self.path}: cannot open the ratings database ({err})") from err
        return connection

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection, closed after use; any SQLite failure in it is a DamagedStoreError naming the file."""
        try:
            with closing(self.connect()) as connection:
                yield connection
        except sqlite3.Error as err:
            raise DamagedStoreError(f"{self.path}: damaged ratings store ({err})") from err

    @staticmethod
    def new_rater() -> str:
        """A new anonymous rater's id (random, unguessable); nothing is stored until their first answer."""
        return secrets.token_urlsafe(12)

    @staticmethod
    def is_rater_id(text: object) -> bool:
        """Whether `text` has the form of the ids `new_rater` makes."""
        return isinstance(text, str) and RATER_ID.fullmatch(text) is not None

    def has_rater(self, rater_id: str) -> bool:
        """Whether this rater has stored an answer."""
        with self.connection() as connection:
            return connection.execute("SELECT 1 FROM raters WHERE id = ?", (rater_id,)).fetchone() is not None

    def answered(self, rater_id: str) -> set[str]:
        """The clips a rater has answered."""
        with self.connection() as connection:
            rows = connection.execute("SELECT clip_id FROM answers WHERE rater_id = ?", (rater_id,)).fetchall()
        return {clip for (clip,) in rows}

    def submit(self, rater_id: str, clip_id: str, ratings: dict[str, int], guess: str) -> None:
        """Store one answer in one transaction, or refuse it and store nothing.

        Raises:
            MusicLSTMError: a rating that is not a whole number 1-5, a missing or unknown question, a
                guess other than "real" or "computer", a rater id not made by `new_rater`, an unknown
                clip, or a clip this rater has answered already (a replayed submission).
            DamagedStoreError: the database cannot be read or written.
        """
        low, high = RATING_RANGE
        if sorted(ratings) != sorted(QUESTIONS):
            raise MusicLSTMError(f"an answer rates exactly {', '.join(QUESTIONS)}; got {', '.join(map(str, ratings))}")
        for question, value in ratings.items():
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise MusicLSTMError(f"{question} must be a whole number from {low} to {high}, got {value!r}")
        if guess not in GUESSES:
            raise MusicLSTMError(f"the guess must be one of {', '.join(GUESSES)}, got {guess!r}")
        if not self.is_rater_id(rater_id):
            raise MusicLSTMError(f"unknown rater id {rater_id!r}: start again from the study's page")
        values = (rater_id, clip_id, *(ratings[question] for question in QUESTIONS), guess, now())
        with self.connection() as connection:
            try:
                connection.execute("BEGIN IMMEDIATE")
                if connection.execute("SELECT 1 FROM clips WHERE id = ?", (clip_id,)).fetchone() is None:
                    raise MusicLSTMError(f"unknown clip {clip_id!r}: not a clip of this study")
                connection.execute("INSERT OR IGNORE INTO raters (id, created_at) VALUES (?, ?)", (rater_id, now()))
                connection.execute(
                    f"INSERT INTO answers (rater_id, clip_id, {', '.join(QUESTIONS)}, guess, submitted_at) "
                    f"VALUES ({', '.join('?' * len(values))})",
                    values,
                )
                connection.execute("COMMIT")
            except sqlite3.IntegrityError:
                connection.execute("ROLLBACK")
                raise MusicLSTMError(
                    f"clip {clip_id} was answered already by this rater; an answer is stored once"
                ) from None
            except BaseException:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise

    def answers(self) -> list[Answer]:
        """Every stored answer, oldest first.

        Raises:
            DamagedStoreError: the database cannot be read, or holds a row no `submit` could have stored.
        """
        with self.connection() as connection:
            rows = connection.execute(
                f"SELECT rater_id, clip_id, {', '.join(QUESTIONS)}, guess, submitted_at FROM answers ORDER BY rowid"
            ).fetchall()
        answers = [Answer(row[0], row[1], dict(zip(QUESTIONS, row[2:5], strict=True)), row[5], row[6]) for row in rows]
        low, high = RATING_RANGE
        for number, answer in enumerate(answers, 1):
            values = list(answer.ratings.values())
            if answer.guess not in GUESSES or not all(type(value) is int and low <= value <= high for value in values):
                raise DamagedStoreError(
                    f"{self.path}: damaged ratings store (answer {number}: ratings {values}, guess {answer.guess!r})"
                )
        return answers
