"""The live page: its WebSocket spoken to directly, and the page played in a real headless Chromium.

The socket tests serve `live_app` with uvicorn in a thread and a stand-in `perform` that answers each
note_on p with p-4 and p-7 (so every reply is known exactly); they need no model and no browser. The
browser test plays the page on a real partner with the bundled model (the session's briefly trained
ones draw no voices under a melody: they sound nothing), in Debian's Chromium
(/usr/bin/chromium, installed by `make setup`) with its own empty profile; every request that would
leave localhost is refused and counted, and a screenshot is kept in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
from types import SimpleNamespace

import mido
import pytest
from chromium import ARTIFACTS, CHROMIUM, MISSING, free_port

from musiclstm.config import MusicLSTMError
from musiclstm.playing.web import LIVE_PAGE, live_app, message_from_json, message_to_json, serve_live_page

needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason=MISSING)


@contextlib.contextmanager
def serving(app):
    """Serve `app` with uvicorn in a thread on a free port; yield its address, then stop it and wait."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="localhost", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"localhost:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def echo_perform(partner, inport, outport, tempo_bpm, clock=None, recorder=None):
    """A stand-in for perform: each note_on p is answered by note_on p-4 and p-7, each note_off alike."""
    sounding = set()
    while not inport.closed:
        message = inport.poll()
        if message is None:
            time.sleep(0.005)
            continue
        for pitch in (message.note - 4, message.note - 7):
            if message.type == "note_on":
                sounding.add(pitch)
                outport.send(mido.Message("note_on", note=pitch, velocity=70))
            else:
                sounding.discard(pitch)
                outport.send(mido.Message("note_off", note=pitch))
    for pitch in sorted(sounding):
        outport.send(mido.Message("note_off", note=pitch))
    return {"notes_silenced": len(sounding)}


def perform_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "musiclstm-perform"]


@pytest.fixture
def echo_server(monkeypatch):
    """The live app on a stand-in partner and perform; yields its host:port."""
    monkeypatch.setattr("musiclstm.playing.session.perform", echo_perform)
    partner = SimpleNamespace(mode="harmonize", steps_per_beat=4)
    with serving(live_app(lambda: partner, tempo_bpm=96.0)) as address:
        yield address


def test_socket_says_hello_then_answers_a_note_and_ignores_garbage(echo_server, caplog):
    from websockets.sync.client import connect

    caplog.set_level(logging.INFO, logger="musiclstm.playing.web")
    with connect(f"ws://{echo_server}/play") as page:
        assert json.loads(page.recv(timeout=10)) == {
            "type": "hello",
            "mode": "harmonize",
            "tempo_bpm": 96.0,
            "steps_per_beat": 4,
        }
        page.send("not json")
        page.send(b"\x00\x01")
        page.send(json.dumps({"type": "note_on", "pitch": 109, "velocity": 80}))
        page.send(json.dumps({"type": "note_on", "pitch": 60, "velocity": 80}))
        answers = [json.loads(page.recv(timeout=5)) for _ in range(2)]
        assert answers == [
            {"type": "note_on", "pitch": 56, "velocity": 70},
            {"type": "note_on", "pitch": 53, "velocity": 70},
        ]
        assert perform_threads()
    deadline = time.monotonic() + 5
    while perform_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert perform_threads() == []
    assert "a performance ended: {'notes_silenced': 2}" in caplog.text  # closing the page silenced the model
    assert caplog.text.count("ignored a") == 3


def test_socket_tells_the_page_when_no_partner_can_be_made():
    def no_partner():
        raise MusicLSTMError("runs/nothing: no such model folder")

    from websockets.sync.client import connect

    with serving(live_app(no_partner, tempo_bpm=100.0)) as address, connect(f"ws://{address}/play") as page:
        assert json.loads(page.recv(timeout=10)) == {"type": "error", "message": "runs/nothing: no such model folder"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"type": "note_on", "pitch": 21, "velocity": 1}', mido.Message("note_on", note=21, velocity=1)),
        ('{"type": "note_on", "pitch": 108, "velocity": 127}', mido.Message("note_on", note=108, velocity=127)),
        ('{"type": "note_on", "pitch": 60}', mido.Message("note_on", note=60, velocity=80)),
        ('{"type": "note_off", "pitch": 60}', mido.Message("note_off", note=60)),
    ],
)
def test_message_from_json_reads_notes_from_a0_to_c8(text, expected):
    assert message_from_json(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{", "not JSON"),
        ("[60]", "not a JSON object"),
        ('{"type": "control_change", "pitch": 60}', "type must be note_on or note_off"),
        ('{"type": "note_on", "pitch": 20}', "pitch must be a whole number from 21 to 108, got 20"),
        ('{"type": "note_off", "pitch": 109}', "got 109"),
        ('{"type": "note_on", "pitch": 60.5}', "got 60.5"),
        ('{"type": "note_on", "pitch": true}', "got True"),
        ('{"type": "note_on", "pitch": 60, "velocity": 0}', "velocity must be a whole number from 1 to 127, got 0"),
    ],
)
def test_message_from_json_refuses_anything_but_a_note_on_the_piano(text, reason):
    with pytest.raises(ValueError, match=reason):
        message_from_json(text)


def test_message_to_json_sends_notes_only_and_a_silent_note_on_as_a_note_off():
    assert json.loads(message_to_json(mido.Message("note_on", note=48, velocity=64))) == {
        "type": "note_on",
        "pitch": 48,
        "velocity": 64,
    }
    assert json.loads(message_to_json(mido.Message("note_on", note=48, velocity=0))) == {
        "type": "note_off",
        "pitch": 48,
    }
    assert message_to_json(mido.Message("control_change", control=123)) is None


def test_serve_live_page_refuses_a_port_in_use():
    with socket.socket() as taken:
        taken.bind(("localhost", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MusicLSTMError, match=f"port {port} on localhost is in use"):
            serve_live_page(lambda: None, tempo_bpm=100.0, port=port, open_browser=False)


def test_live_page_loads_nothing_from_elsewhere():
    page = LIVE_PAGE.read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page and "@import" not in page


def press_key(page, pitch: int, held_ms: int) -> None:
    """Press the on-screen key of `pitch` with the mouse for `held_ms`, low on the key (below the black keys)."""
    box = page.locator(f'.key[data-pitch="{pitch}"]').bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.85)
    page.mouse.down()
    page.wait_for_timeout(held_ms)
    page.mouse.up()


@needs_chromium
def test_the_model_harmonizes_the_keys_pressed_in_a_real_browser(browser_page):
    from musiclstm.config import LiveConfig
    from musiclstm.playing.partner import open_partner

    page, refused = browser_page
    heard = []  # (the key the player last pressed, a model note_on's pitch), in the socket's order
    last_pressed = []

    def on_socket(websocket):
        def on_sent(payload):
            message = json.loads(payload)
            if message["type"] == "note_on":
                last_pressed.append(message["pitch"])

        def on_received(payload):
            message = json.loads(payload)
            if message["type"] == "note_on" and last_pressed:
                heard.append((last_pressed[-1], message["pitch"]))

        websocket.on("framesent", on_sent)
        websocket.on("framereceived", on_received)

    page.on("websocket", on_socket)
    make_partner = lambda: open_partner(None, LiveConfig(mode="harmonize"), seed=0)  # noqa: E731
    with serving(live_app(make_partner, tempo_bpm=100.0)) as address:
        page.goto(f"http://{address}/")
        status = page.locator("#status")
        page.locator("#status.connected, #status.problem").wait_for(timeout=60_000)  # a partner, or why not
        assert status.text_content() == "connected · harmonize · 100 bpm"
        for pitch in (60, 64, 67, 72):  # upwards, so a model note late for one key lies below the next too
            press_key(page, pitch, held_ms=900)
            page.wait_for_timeout(200)
        page.wait_for_function("window.liveStats.modelNotesDrawn > 0 && window.liveStats.modelNotesSounded > 0")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "live.png")
        stats = page.evaluate("window.liveStats")
    assert stats["pressed"] == 4
    assert len(stats["roundTripsMs"]) >= 1
    assert heard and all(pitch < pressed for pressed, pitch in heard), heard
    assert refused == []


@needs_chromium
def test_the_model_answers_a_phrase_played_in_a_real_browser(browser_page):
    from musiclstm.config import LiveConfig
    from musiclstm.playing.partner import open_partner

    page, refused = browser_page
    make_partner = lambda: open_partner(None, LiveConfig(mode="answer", wait=2.0, bars=1), seed=0)  # noqa: E731
    with serving(live_app(make_partner, tempo_bpm=120.0)) as address:
        page.goto(f"http://{address}/")
        page.locator("#status.connected").wait_for(timeout=60_000)
        for pitch in (60, 64, 67, 72, 67, 64):
            press_key(page, pitch, held_ms=200)
            page.wait_for_timeout(50)
        assert page.evaluate("window.liveStats.modelNotesDrawn") == 0  # it listens while the phrase is played (1 s)
        page.wait_for_function("window.liveStats.modelNotesDrawn > 0 && window.liveStats.modelNotesSounded > 0")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "live-answer.png")
    assert refused == []
