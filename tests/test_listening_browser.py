"""The listening test's page in real headless Chromium: two raters at once, a killed server, nothing lost.

`musiclstm listen serve` serves a small study open to the network (`--address 0.0.0.0`); two raters in
two browser contexts rate its clips side by side; the server is killed with SIGKILL half-way and
started again; the raters come back by their addresses and finish. Every answer submitted before
the kill is still there, the report counts them all, and the answer key, the ratings database and
the passages' MIDI are never served, whatever URL asks for them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from chromium import ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, MISSING, free_port

from musiclstm import open_study, prepare_study, study_report
from musiclstm.listening.study import read_answer_key

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip(MISSING, allow_module_level=True)


def serve(study: Path, port: int, log: Path) -> subprocess.Popen:
    """Start `musiclstm listen serve` on `port`, open to the network, and wait until it answers."""
    command = [str(Path(sys.executable).with_name("musiclstm")), "listen", "serve", str(study)]
    command += ["--port", str(port), "--address", "0.0.0.0", "--no-browser"]
    server = subprocess.Popen(command, stdout=log.open("a"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return server
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail(f"the rating page did not start: {log.read_text()}")
            time.sleep(0.3)


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.read()
    except urllib.error.HTTPError as error:
        return error.read()


def answer_clip(page, musicality: int, guess: str) -> None:
    """Fill in the page's four questions about the clip it shows and submit."""
    for question, value in (("Musicality", musicality), ("Coherence", 3), ("Creativity", 2)):
        page.get_by_role("radiogroup", name=question).get_by_text(str(value), exact=True).click()
    page.get_by_role("radiogroup", name="Bach or computer?").get_by_text(guess, exact=True).click()
    page.get_by_role("button", name="Submit and go on").click()


def wait_for_progress(page, done: int, total: int) -> None:
    page.get_by_text(f"{done} of {total} clips rated").wait_for(timeout=60_000)


@pytest.fixture
def study(trained_runs, bach_corpus, tmp_path):
    return prepare_study(tmp_path / "study", trained_runs["all"], bach_corpus.path, pieces=2, bars=1, seed=5)


def test_two_raters_rate_at_once_and_a_killed_server_loses_no_answer(study, tmp_path):
    from playwright.sync_api import sync_playwright

    port, log = free_port(), tmp_path / "serve.log"
    address = f"http://127.0.0.1:{port}"
    total = len(study.clip_ids)
    server = serve(study.folder, port, log)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
            pages = [browser.new_context(viewport={"width": 1000, "height": 1100}).new_page() for _ in range(2)]
            for page in pages:
                page.goto(address)
                page.get_by_role("button", name="Start").click(timeout=60_000)
                wait_for_progress(page, 0, total)
            raters = [page.url.split("rater=")[1] for page in pages]
            assert raters[0] != raters[1]
            for done in range(2):  # both raters submit, one right after the other, then wait
                answer_clip(pages[0], musicality=5, guess="Bach")
                answer_clip(pages[1], musicality=1, guess="a computer")
                for page in pages:
                    wait_for_progress(page, done + 1, total)
            ARTIFACTS.mkdir(exist_ok=True)
            pages[0].screenshot(path=ARTIFACTS / "listening.png", full_page=True)
            before_kill = {(a.rater_id, a.clip_id, a.ratings["musicality"]) for a in study.ratings.answers()}
            assert len(before_kill) == 4

            server.send_signal(signal.SIGKILL)
            server.wait(timeout=20)
            server = serve(study.folder, port, log)
            for page in pages:  # back by their own addresses, where they stopped
                page.reload()
                wait_for_progress(page, 2, total)
            for done in range(2, total):
                answer_clip(pages[0], musicality=4, guess="a computer")
                answer_clip(pages[1], musicality=2, guess="Bach")
                for page in pages:
                    wait_for_progress(page, done + 1, total)
            for page in pages:
                page.get_by_text("All clips are rated").wait_for(timeout=60_000)
                assert page.get_by_text("Traceback").count() == 0
            probe_for_secrets(address, study)
            browser.close()
    finally:
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=20)

    answers = study.ratings.answers()
    stored = {(a.rater_id, a.clip_id, a.ratings["musicality"]) for a in answers}
    assert before_kill <= stored
    assert len(answers) == 2 * total and {a.rater_id for a in answers} == set(raters)
    report = study_report(open_study(study.folder))
    assert report["answers"] == 2 * total and report["raters"] == 2
    assert (
        report["ratings"]["generated"]["musicality"]["ratings"] + report["ratings"]["real"]["musicality"]["ratings"]
        == 2 * total
    )


def probe_for_secrets(address: str, study) -> None:
    """Ask the server by URL for the answer key, the ratings and the passages' MIDI: none may come back."""
    key = read_answer_key(study)
    clip = study.clip_ids[0]
    paths = ["manifest.json", "study/manifest.json", "ratings.sqlite", "ratings.sqlite-wal", f"midi/{clip}.mid"]
    paths += [f"clips/{clip}.wav", "app/static/manifest.json", "media/manifest.json", "media/../manifest.json"]
    paths += ["..%2fmanifest.json", "static/../../manifest.json", "_stcore/manifest.json"]
    secrets = [b"SQLite format 3", b"MThd", b"RIFF", b'"source"']
    secrets += [entry["origin"].encode() for entry in key.values()]
    for path in paths:
        body = fetch(f"{address}/{path}")
        assert not any(secret in body for secret in secrets), path
