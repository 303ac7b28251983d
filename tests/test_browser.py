"""The studio end to end in a real headless Chromium: `musiclstm demo` serves it, Playwright clicks.

Chromium is Debian's, started with its own empty profile (`chromium.localhost_page`); every request that
would leave localhost is refused and counted. The screenshot of the composed page is kept in test-artifacts/.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from chromium import ARTIFACTS, CHROMIUM, MISSING, free_port

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip(MISSING, allow_module_level=True)


@pytest.fixture
def studio(trained_runs, tmp_path):
    """The demo command serving the studio on a free port; yields its address."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("musiclstm")), "demo", "--model", str(trained_runs["all"])]
    command += ["--runs", str(tmp_path), "--port", str(port), "--no-browser"]
    log = open(tmp_path / "demo.log", "w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    address = f"http://localhost:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{address}/_stcore/health", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"the studio did not start: {(tmp_path / 'demo.log').read_text()}")
            time.sleep(0.5)
    yield address
    server.terminate()
    server.wait(timeout=20)
    log.close()
    with pytest.raises(OSError):  # the demo stops its server with it: nothing is left listening
        urllib.request.urlopen(f"{address}/_stcore/health", timeout=2)


def test_the_studio_composes_in_a_real_browser_and_names_bad_uploads(studio, browser_page, tmp_path):
    page, refused = browser_page
    page.goto(studio)
    page.get_by_role("button", name="Generate").click(timeout=60_000)
    page.locator("audio").wait_for(timeout=120_000)
    page.get_by_role("button", name="Download MIDI").wait_for()
    page.get_by_role("button", name="Download WAV").wait_for()
    page.get_by_text("held-out music of the model's corpus").wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "studio.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download MIDI").click()
    assert Path(download.value.path()).read_bytes().startswith(b"MThd")

    (tmp_path / "notes.mid").write_text("these are not notes")
    page.locator("input[type=file]").set_input_files(tmp_path / "notes.mid")
    page.get_by_text("The piece will open with notes.mid.").wait_for()  # the server has the upload
    page.get_by_role("button", name="Generate").click()
    page.get_by_text("notes.mid: not a MIDI file").wait_for(timeout=60_000)

    (tmp_path / "huge.mid").write_bytes(b"MThd" + bytes(1_010_000))
    page.locator("input[type=file]").set_input_files(tmp_path / "huge.mid")
    page.get_by_text("File must be 1.0MB or smaller").wait_for(timeout=60_000)  # the demo's upload limit
    assert page.get_by_text("Traceback").count() == 0
    assert refused == []


def test_the_demo_without_no_browser_and_without_a_terminal_serves_the_page_and_opens_a_browser(tmp_path):
    port = free_port()
    opened = tmp_path / "opened.txt"
    opener = tmp_path / "opener.sh"
    opener.write_text(f'#!/bin/sh\necho "$1" > {opened}\n')
    opener.chmod(0o755)
    home = tmp_path / "home"  # a machine where Streamlit never ran: no ~/.streamlit/credentials.toml
    home.mkdir()
    environment = dict(os.environ, HOME=str(home), BROWSER=str(opener))
    command = [str(Path(sys.executable).with_name("musiclstm")), "demo", "--port", str(port)]
    server = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment
    )
    try:
        deadline = time.monotonic() + 60
        while not opened.exists() and time.monotonic() < deadline and server.poll() is None:
            time.sleep(0.2)
        assert server.poll() is None, "the demo ended instead of serving"
        with urllib.request.urlopen(f"http://localhost:{port}/", timeout=5) as answer:
            assert answer.status == 200
        assert opened.read_text().strip() == f"http://localhost:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)
