"""Killed work loses nothing: `data` and `train` processes are SIGKILLed at random moments, then rerun."""

from __future__ import annotations

import fcntl
import os
import pty
import random
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from musiclstm import MusicLSTMError, load_corpus
from musiclstm.network.run import load_model, read_history

CONSOLE = str(Path(sys.executable).with_name("musiclstm"))


def kill_after(command: list[str], seconds: float, ready: Path | None = None) -> int | None:
    """Start `command`, wait for `ready` to exist (if given), then `seconds` more, and SIGKILL it."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while ready is not None and not ready.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    return process.wait(timeout=30)


def processes_mentioning(text: str, wait_seconds: float = 10) -> list[int]:
    """The processes whose command line holds `text`, once given `wait_seconds` to end (Linux /proc)."""
    deadline = time.monotonic() + wait_seconds
    while True:
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                if text.encode() in cmdline.read_bytes():
                    found.append(int(cmdline.parent.name))
            except OSError:  # it ended while we looked
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize("moment", [0, 1, 2])
def test_a_killed_data_build_leaves_no_corrupt_corpus_and_the_rerun_finishes(tmp_path, moment):
    out = tmp_path / "corpus"
    command = [CONSOLE, "data", "--source", "bach", "--limit", "24", "--out", str(out), "--workers", "2"]
    kill_after(command, random.Random(moment).uniform(0.5, 5.0))
    assert not processes_mentioning(str(out)), "the killed run's workers live on"
    try:
        corpus = load_corpus(out)
    except MusicLSTMError as err:
        assert "not a corpus" in str(err)  # killed before the manifest: nothing half-written is mistaken for one
    else:
        assert sum(piece.frames for piece in corpus) == corpus.manifest["total_frames"]
        assert all(piece.roll.shape[1] == 88 for piece in corpus)
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    corpus = load_corpus(out)
    assert len(corpus) == 24 and len(list(out.glob("rolls-*.npy"))) == 1


@pytest.mark.parametrize("moment", [0, 1])
def test_a_killed_training_run_resumes_and_finishes_with_a_whole_history(bach_corpus, tmp_path, moment):
    run = tmp_path / "run"
    command = [CONSOLE, "train", "--data", str(bach_corpus.path), "--out", str(run), "--preset", "small"]
    kill_after([*command, "--epochs", "40"], random.Random(moment).uniform(0.0, 2.0), run / "checkpoints" / "last.ckpt")
    load_model(run)  # the best weights so far load
    done = len(read_history(run))
    resumed = subprocess.run(
        [CONSOLE, "train", "--out", str(run), "--resume", "--epochs", str(done + 2)], capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    epochs = [row["epoch"] for row in read_history(run)]
    assert epochs == list(range(len(epochs))) and len(epochs) >= done + 1
    load_model(run)


@pytest.mark.parametrize("sent, status, named", [(signal.SIGTERM, 143, "SIGTERM"), (signal.SIGINT, 130, "Ctrl-C")])
def test_a_signalled_training_run_says_what_it_kept_and_exits_with_the_signals_status(
    bach_corpus, tmp_path, sent, status, named
):
    run = tmp_path / "run"
    command = [CONSOLE, "train", "--data", str(bach_corpus.path), "--out", str(run), "--preset", "small"]
    process = subprocess.Popen([*command, "--epochs", "200"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (run / "checkpoints" / "last.ckpt").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(sent)
    stderr = process.communicate(timeout=60)[1].decode()
    assert process.returncode == status, stderr
    assert f"training stopped by {named}" in stderr and "Traceback" not in stderr
    assert "checkpoints/last.ckpt" in stderr and f"musiclstm train --out {run} --resume" in stderr
    load_model(run)  # the best weights so far load


@pytest.mark.parametrize(
    "command, working",
    [
        (["data", "--source", "bach", "--workers", "2"], "reading bach"),
        (["generate", "--length", "100000", "--no-audio"], "composing"),
    ],
)
def test_ctrl_c_in_data_or_generate_is_one_line_status_130_and_nothing_half_written(tmp_path, command, working):
    """Ctrl-C at a terminal signals the whole foreground process group, the reading workers too.

    stderr is a pseudo-terminal, as at a terminal, so the progress bar shows when the work has begun.
    """
    out = tmp_path / "out"
    terminal, process_end = pty.openpty()
    fcntl.ioctl(process_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a bar needs columns
    process = subprocess.Popen(
        [CONSOLE, *command, "--out", str(out)], stdout=subprocess.DEVNULL, stderr=process_end, start_new_session=True
    )
    os.close(process_end)
    said, deadline = "", time.monotonic() + 120
    while working not in said and process.poll() is None and time.monotonic() < deadline:
        if select.select([terminal], [], [], 0.05)[0]:
            said += os.read(terminal, 65536).decode(errors="replace")
    os.killpg(process.pid, signal.SIGINT)
    while True:  # read to the end: a full terminal would block the process
        try:
            chunk = os.read(terminal, 65536)
        except OSError:  # the process ended and closed its side
            break
        if not chunk:
            break
        said += chunk.decode(errors="replace")
    status = process.wait(timeout=60)
    os.close(terminal)
    assert status == 130, said
    assert "musiclstm: interrupted (Ctrl-C)" in said and "Traceback" not in said and "KeyboardInterrupt" not in said
    assert not out.exists() and not list(tmp_path.glob("**/*.tmp*"))


@pytest.fixture(scope="module")
def small_composition():
    from musiclstm import generate

    return generate(length=4, seed=0)


@pytest.mark.parametrize(
    "where, stopped",
    [
        ("tempfile.mkdtemp", KeyboardInterrupt()),  # Ctrl-C while making the new folder's staging folder
        ("musiclstm.composing.saving.write_piece", KeyboardInterrupt()),  # Ctrl-C while writing a piece
        ("musiclstm.composing.saving.write_piece", MusicLSTMError("the engraver failed")),  # a failed run
    ],
)
def test_an_interrupted_or_failed_save_leaves_no_folder_it_made_and_keeps_one_that_was_there(
    small_composition, tmp_path, monkeypatch, where, stopped
):
    from musiclstm import save_pieces

    def stop(*args, **kwargs):
        raise stopped

    monkeypatch.setattr(where, stop)
    there = tmp_path / "there"
    there.mkdir()
    (there / "notes.txt").write_text("mine")
    for out in (tmp_path / "new" / "pieces", there):
        with pytest.raises(type(stopped)):
            save_pieces(small_composition, out, audio=False)
    assert sorted(path.relative_to(tmp_path).as_posix() for path in tmp_path.rglob("*")) == [
        "there",
        "there/notes.txt",
    ]
