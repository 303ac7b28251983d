"""Serving a page: a busy port refused by name; Ctrl-C and SIGTERM end the command like any other, no server left."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from musiclstm import MusicLSTMError, check_port_free
from musiclstm.serving import page_address

CONSOLE = str(Path(sys.executable).with_name("musiclstm"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, each with its state letter ('Z' a zombie), from Linux's /proc."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, parent = stat.read_text().rsplit(")", 1)[1].split()[:2]
        except OSError:  # it ended while we looked
            continue
        if int(parent) == pid:
            found[int(stat.parent.name)] = state
    return found


def is_running(pid: int) -> bool:
    """Whether process `pid` exists and is no zombie (one that ended, not yet reaped by whoever adopted it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2):
            return True
    except OSError:
        return False


def wait_until(ready, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"not ready: ended with {process.wait()}")
        time.sleep(0.2)


def test_a_port_in_use_or_a_bad_port_or_address_is_refused_by_name():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MusicLSTMError, match=rf"^port {port} on localhost is in use \(another server\?\)"):
            check_port_free("localhost", port)
    check_port_free("localhost", port)  # free again
    with pytest.raises(MusicLSTMError, match="port must be from 1 to 65,535, got 0"):
        check_port_free("localhost", 0)
    with pytest.raises(MusicLSTMError, match="--address no.such.host.invalid: not an address of this machine"):
        check_port_free("no.such.host.invalid", 8502)


def test_the_browser_is_sent_to_localhost_for_a_page_served_on_every_address():
    assert page_address("0.0.0.0", 8502) == "http://localhost:8502"
    assert page_address("127.0.0.1", 80) == "http://127.0.0.1:80"
    assert page_address("::1", 8501) == "http://[::1]:8501"


def test_listen_serve_on_a_port_in_use_says_so_in_one_line(silent_study):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [CONSOLE, "listen", "serve", str(silent_study.folder), "--port", str(port), "--no-browser"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (
        2,
        f"musiclstm: error: port {port} on localhost is in use (another server?): choose another with --port\n",
    )


@pytest.mark.parametrize(
    ("sent", "status", "named"), [(signal.SIGINT, 130, "Ctrl-C"), (signal.SIGTERM, 143, "SIGTERM")]
)
def test_a_served_page_stopped_by_a_signal_ends_with_its_status_in_one_line_and_no_server_left(
    silent_study, sent, status, named
):
    port = free_port()
    command = [CONSOLE, "listen", "serve", str(silent_study.folder), "--port", str(port), "--no-browser"]
    served = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    wait_until(lambda: answers(port), served)
    (server,) = children(served.pid)  # the Streamlit server: a child, not this process exec'd
    if sent == signal.SIGINT:
        os.killpg(served.pid, sent)  # as a terminal's Ctrl-C: to the whole foreground process group
    else:
        served.send_signal(sent)
    stderr = served.communicate(timeout=30)[1]
    assert served.returncode == status, stderr
    assert stderr.splitlines()[-1] == f"musiclstm: interrupted ({named}); every file written so far is whole"
    assert "Traceback" not in stderr
    assert not is_running(server) and not answers(port)


def test_demo_without_a_display_says_once_where_to_open_the_page_and_leaves_no_zombie(tmp_path):
    port, log = free_port(), tmp_path / "stderr.txt"
    environment = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER", "TERM")}
    command = [CONSOLE, "demo", "--port", str(port), "--runs", str(tmp_path)]
    with log.open("w") as sink:
        served = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=sink, env=environment)
    said = f"no browser found; open http://localhost:{port} yourself"
    wait_until(lambda: said in log.read_text(), served)
    time.sleep(0.5)  # the browser-opening thread has ended; a forked opener would be a zombie by now
    states = list(children(served.pid).values())
    assert len(states) == 1 and "Z" not in states  # the server alone: no zombie
    served.send_signal(signal.SIGINT)
    assert served.wait(timeout=30) == 130
    assert log.read_text().count(said) == 1 and "Traceback" not in log.read_text()


def test_a_served_page_killed_outright_leaves_no_server(silent_study):
    port = free_port()
    command = [CONSOLE, "listen", "serve", str(silent_study.folder), "--port", str(port), "--no-browser"]
    served = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: answers(port), served)
    (server,) = children(served.pid)
    served.send_signal(signal.SIGKILL)
    served.wait(timeout=30)
    deadline = time.monotonic() + 5
    while is_running(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_running(server) and not answers(port)
    check_port_free("localhost", port)  # a server may start there again at once
