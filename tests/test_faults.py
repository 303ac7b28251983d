"""A hostile user's faults, through the console script: full disks, missing folders, bad seeds, failures after
composing, SIGTERM, progress in logs. Each command either refuses in one line before any work, or fails
with its true status and leaves nothing half-written under a final name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TICKS_PER_BEAT, write_midi

CONSOLE = str(Path(sys.executable).with_name("musiclstm"))


def musiclstm(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CONSOLE, *args], capture_output=True, text=True, timeout=timeout, env=dict(os.environ, **(env or {}))
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    """The single `musiclstm: error:` line a refusal prints, checking there is no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("musiclstm: error:")]
    assert len(errors) == 1, done.stderr
    return errors[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


@pytest.fixture
def tiny_disk(tmp_path):
    """A 200 KB tmpfs, mounted where this test may (as root, the way CI runs), else the test is skipped."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.decode().strip()[:80]})")
    yield mount_point
    subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture(scope="module")
def a_piece(tmp_path_factory) -> Path:
    """A generated piece's MIDI file: 320 steps, 48 s at 100 beats per minute."""
    out = tmp_path_factory.mktemp("piece")
    done = musiclstm("generate", "--out", str(out), "--seed", "3", "--no-audio")
    assert done.returncode == 0, done.stderr
    return out / "piece_1.mid"


def test_render_on_a_full_disk_fails_by_name_and_leaves_no_short_wav(tiny_disk, a_piece):
    done = musiclstm("render", str(a_piece), str(tiny_disk / "x.wav"))
    assert done.returncode == 2
    assert "x.wav" in one_error_line(done) and "disk" in one_error_line(done)
    assert "Wrote" not in done.stdout
    assert files_under(tiny_disk) == []


def test_generate_on_a_full_disk_fails_by_name_and_leaves_no_piece(tiny_disk):
    done = musiclstm("generate", "--out", str(tiny_disk / "out"), "--seed", "1", "--num-outputs", "2")
    assert done.returncode == 2
    error = one_error_line(done)
    assert "no space left" in error or "disk is full" in error
    assert ".pieces-" not in error
    assert [name for name in files_under(tiny_disk) if "piece_" in name] == []


def test_output_files_go_into_folders_that_do_not_exist_yet(tmp_path, a_piece):
    done = musiclstm("render", str(a_piece), str(tmp_path / "new" / "deeper" / "x.wav"))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "new" / "deeper" / "x.wav").stat().st_size > 44


def test_evaluate_writes_its_json_into_a_folder_that_does_not_exist_yet(tmp_path):
    midi = tmp_path / "midi"
    for index in range(6):
        write_midi(midi / f"tune{index}.mid", [(60 + index, 0, 8 * TICKS_PER_BEAT), (67, 0, 4 * TICKS_PER_BEAT)])
    assert musiclstm("data", "--source", str(midi), "--out", str(tmp_path / "corpus")).returncode == 0
    report = tmp_path / "new" / "e.json"
    done = musiclstm("evaluate", "--data", str(tmp_path / "corpus"), "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert '"nll"' in report.read_text()


@pytest.mark.parametrize(
    "command",
    [
        ["generate", "--seed", "-1"],
        ["generate", "--seed", str(2**64)],
        ["harmonize", "MELODY", "--seed", "-5"],
        ["train", "--data", "nowhere", "--seed", "-1"],
        ["data", "--source", "bach", "--seed", str(2**32)],
    ],
)
def test_a_seed_outside_0_to_2_to_the_32_is_refused_by_name_before_any_work(tmp_path, a_piece, command):
    command = [str(a_piece) if part == "MELODY" else part for part in command]
    done = musiclstm(*command, "--out", str(tmp_path / "out"))
    assert done.returncode == 2
    assert "seed" in one_error_line(done)
    assert not (tmp_path / "out").exists()


@pytest.fixture
def failing_engraver(tmp_path) -> dict:
    """A PATH on which LilyPond is found but fails, as a broken installation does."""
    tools = tmp_path / "tools"
    tools.mkdir()
    for name in ("musicxml2ly", "lilypond"):
        (tools / name).write_text("#!/bin/sh\necho 'fatal error: the engraver broke' >&2\nexit 1\n")
        (tools / name).chmod(0o755)
    return {"PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}


def test_an_engraver_that_fails_after_composing_leaves_the_earlier_set_whole(tmp_path, failing_engraver):
    out = tmp_path / "out"
    assert musiclstm("generate", "--out", str(out), "--seed", "1", "--no-audio", "--length", "16").returncode == 0
    before = {name: (out / name).read_bytes() for name in files_under(out)}
    done = musiclstm(
        "generate", "--out", str(out), "--force", "--seed", "2", "--num-outputs", "2", "--no-audio", "--length", "16",
        "--score", "pdf", env=failing_engraver,
    )  # fmt: skip
    assert done.returncode == 2
    assert "the engraver broke" in one_error_line(done)
    assert {name: (out / name).read_bytes() for name in files_under(out)} == before


def test_a_folder_named_like_a_piece_file_is_refused_before_composing_even_with_force(tmp_path):
    out = tmp_path / "out"
    (out / "piece_1.pdf").mkdir(parents=True)
    done = musiclstm("generate", "--out", str(out), "--force", "--seed", "1", "--length", "100000")
    assert done.returncode == 2
    assert "piece_1.pdf: a folder where a piece file would go" in one_error_line(done)


@pytest.mark.parametrize("command", ["generate", "harmonize"])
def test_sigterm_ends_a_command_with_143_one_line_and_no_temporary_file(tmp_path, a_piece, command):
    out = tmp_path / "out"
    args = ["--out", str(out), "--seed", "1", "--no-audio", "--num-outputs", "8"]
    args += ["--length", "100000"] if command == "generate" else [str(a_piece), "--lookahead", "64"]
    process = subprocess.Popen([CONSOLE, command, *args], stderr=subprocess.PIPE, text=True)
    time.sleep(8)  # past the model's loading, into composing
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143
    assert "Traceback" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("musiclstm:")] == [
        "musiclstm: interrupted (SIGTERM); every file written so far is whole"
    ]
    assert not out.exists() or files_under(out) == []


def test_progress_bars_stay_out_of_a_log_file(tmp_path):
    done = musiclstm("generate", "--out", str(tmp_path / "out"), "--seed", "1", "--no-audio", "--length", "32")
    assert done.returncode == 0, done.stderr
    assert "composing" not in done.stderr and "it/s" not in done.stderr


def test_summary_of_a_model_folder_prints_its_network(tmp_path):
    from musiclstm import bundled_model

    done = musiclstm("summary", "--model", str(bundled_model()))
    assert done.returncode == 0, done.stderr
    assert "lstm1 (LSTM)" in done.stdout and "NADE" in done.stdout
    assert musiclstm("summary", "--model", str(tmp_path)).returncode == 2


@pytest.mark.parametrize("tempo", [-5, 0, float("nan"), "abc", 1e9])
def test_write_score_refuses_a_tempo_by_name(tmp_path, tempo):
    import numpy as np

    from musiclstm import MusicLSTMError, write_score

    with pytest.raises(MusicLSTMError, match="tempo must be"):
        write_score(np.zeros((16, 88), bool), tmp_path / "s.musicxml", 4, tempo)
    assert not (tmp_path / "s.musicxml").exists()


def test_pieces_whose_rolls_would_take_gigabytes_are_refused_naming_the_limit():
    from musiclstm import GenerationSettings, MusicLSTMError

    with pytest.raises(MusicLSTMError, match="num_outputs x length = 256 x 100,000 steps is over the limit"):
        GenerationSettings(num_outputs=256, length=100_000)
    assert GenerationSettings(num_outputs=100, length=100_000).num_outputs == 100
