"""Serve the live page: a musician plays in a browser and the model answers through a WebSocket.

`live_app(make_partner, tempo_bpm)` is a Starlette app. `/` is live.html (one self-contained file: an
on-screen keyboard, Web MIDI input, a synth and a scrolling piano roll); `/play` is a WebSocket. Each
connection gets its own partner from `make_partner()` and its own performance (`perform`, at
tempo_bpm) in a worker thread: the page's messages feed a SocketInput (a mido-style input port), and
the model's messages leave through a SocketOutput, which hands them to the event loop to send.

Messages are JSON text, one note each; a pitch is a MIDI number from 21 (A0) to 108 (C8), a velocity
1..127 (missing: 80):
    page -> server and server -> page: {"type": "note_on", "pitch": 60, "velocity": 80}
                                       {"type": "note_off", "pitch": 60}
    first, server -> page: {"type": "hello", "mode": "harmonize", "tempo_bpm": 100.0, "steps_per_beat": 4}
    where a partner cannot be made: {"type": "error", "message": "..."}, then the socket closes.
A malformed message from the page is logged and ignored; the connection stays open. When the socket
closes, the input port is closed, `perform` silences the model's notes and returns, and its thread is
joined before the handler ends. `serve_live_page` runs the app with uvicorn in this process until
Ctrl-C. Nothing here downloads anything or prints; it logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import mido
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from musiclstm.config import HIGHEST_PITCH, LOWEST_PITCH, MusicLSTMError
from musiclstm.playing.live import one_thread
from musiclstm.serving import check_port_free, open_in_browser, page_address

if TYPE_CHECKING:
    import uvicorn

    from musiclstm.playing.partner import Partner

logger = logging.getLogger(__name__)

LIVE_PAGE = Path(__file__).with_name("live.html")
DEFAULT_VELOCITY = 80  # a note_on from the page without a velocity
BROWSER_WAIT_SECONDS = 30  # how long the browser opener waits for uvicorn to start listening
LOGGED_TEXT_CHARACTERS = 80  # how much of a rejected message the log line quotes


class SocketInput:
    """A mido-style input port fed by the page's messages: `put` from the event loop, `poll` from perform's thread."""

    def __init__(self) -> None:
        self._messages: queue.SimpleQueue[mido.Message] = queue.SimpleQueue()
        self._closed = threading.Event()

    def put(self, message: mido.Message) -> None:
        """Queue one of the player's messages for the next `poll`."""
        self._messages.put(message)

    def poll(self) -> mido.Message | None:
        """Return the oldest message not yet read, or None when there is none (never waits)."""
        try:
            return self._messages.get_nowait()
        except queue.Empty:
            return None

    def close(self) -> None:
        """Mark the port closed: perform silences the model and returns."""
        self._closed.set()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()


class SocketOutput:
    """A mido-style output port: `send` (from perform's thread) queues the message as JSON on the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, outbox: asyncio.Queue[str | None]) -> None:
        self._loop = loop
        self._outbox = outbox

    def send(self, message: mido.Message) -> None:
        """Queue `message` for the page; messages other than notes are dropped."""
        text = message_to_json(message)
        if text is None:
            return
        try:
            self._loop.call_soon_threadsafe(self._outbox.put_nowait, text)
        except RuntimeError:  # the loop has closed: the server is gone, and the page with it
            logger.debug("dropped %s: the event loop has closed", text)


def message_from_json(text: str) -> mido.Message:
    """Read one of the page's note messages.

    Raises:
        ValueError: not JSON, not an object, a type other than note_on/note_off, a pitch that is not a
            whole number from 21 to 108, or a note_on velocity that is not a whole number from 1 to 127.
    """
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError) as err:
        raise ValueError(f"not JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    kind = data.get("type")
    if kind not in ("note_on", "note_off"):
        raise ValueError(f"type must be note_on or note_off, got {kind!r}")
    pitch = data.get("pitch")
    if not is_whole_number(pitch) or not LOWEST_PITCH <= pitch <= HIGHEST_PITCH:
        raise ValueError(f"pitch must be a whole number from {LOWEST_PITCH} to {HIGHEST_PITCH}, got {pitch!r}")
    if kind == "note_off":
        return mido.Message("note_off", note=pitch)
    velocity = data.get("velocity", DEFAULT_VELOCITY)
    if not is_whole_number(velocity) or not 1 <= velocity <= 127:
        raise ValueError(f"velocity must be a whole number from 1 to 127, got {velocity!r}")
    return mido.Message("note_on", note=pitch, velocity=velocity)


def message_to_json(message: mido.Message) -> str | None:
    """The page's JSON for a note message (a note_on at velocity 0 is a note_off); None for any other message."""
    if message.type == "note_on" and message.velocity > 0:
        return json.dumps({"type": "note_on", "pitch": message.note, "velocity": message.velocity})
    if message.type in ("note_on", "note_off"):
        return json.dumps({"type": "note_off", "pitch": message.note})
    return None


def is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def live_app(make_partner: Callable[[], Partner], tempo_bpm: float) -> Starlette:
    """Build the live page's app: live.html at `/`, one performance per WebSocket connection at `/play`.

    Args:
        make_partner: called once per connection, in a worker thread (a model may take seconds to load);
            returns a Partner (see musiclstm.playing.partner.open_partner).
        tempo_bpm: the step clock's tempo, quarter notes per minute.
    """
    page = LIVE_PAGE.read_text(encoding="utf-8")

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def play(websocket: WebSocket) -> None:
        await websocket.accept()
        await run_connection(websocket, make_partner, tempo_bpm)

    return Starlette(routes=[Route("/", home), WebSocketRoute("/play", play)])


async def run_connection(websocket: WebSocket, make_partner: Callable[[], Partner], tempo_bpm: float) -> None:
    """Play one performance over an accepted socket until either side ends it; the perform thread is joined."""
    from musiclstm.playing.session import perform  # here: the app is built (and the page read) without torch

    try:
        partner = await asyncio.to_thread(make_partner)
    except MusicLSTMError as err:
        logger.error("no partner for this page: %s", err)
        await websocket.send_json({"type": "error", "message": str(err)})
        await websocket.close(code=1011)
        return
    hello = {"type": "hello", "mode": partner.mode, "tempo_bpm": tempo_bpm, "steps_per_beat": partner.steps_per_beat}
    try:
        await websocket.send_json(hello)
    except (WebSocketDisconnect, RuntimeError, OSError):
        return  # the page left while the partner was loading

    loop = asyncio.get_running_loop()
    inport, outbox = SocketInput(), asyncio.Queue()
    ended = loop.create_future()

    def performance() -> None:
        try:
            summary = perform(partner, inport, SocketOutput(loop, outbox), tempo_bpm)
            logger.info("a performance ended: %s", summary)
        except Exception as err:  # logged in full here; the page is told in one line
            logger.exception("a performance stopped with an error")
            error = json.dumps({"type": "error", "message": f"the performance stopped: {err}"})
            loop.call_soon_threadsafe(outbox.put_nowait, error)
        finally:
            loop.call_soon_threadsafe(ended.set_result, None)

    thread = threading.Thread(target=performance, name="musiclstm-perform", daemon=True)
    thread.start()
    sending = asyncio.create_task(send_all(websocket, outbox))
    listening = asyncio.create_task(receive_all(websocket, inport))
    done, _ = await asyncio.wait([listening, ended], return_when=asyncio.FIRST_COMPLETED)
    inport.close()
    await asyncio.to_thread(thread.join)
    outbox.put_nowait(None)
    await sending
    if listening in done:
        return  # the page closed the socket
    listening.cancel()
    try:
        await websocket.close()
    except (RuntimeError, OSError):  # the page closed it meanwhile
        pass


async def receive_all(websocket: WebSocket, inport: SocketInput) -> None:
    """Feed the page's note messages to `inport` until the socket closes; log and skip anything else."""
    while True:
        frame = await websocket.receive()
        if frame["type"] == "websocket.disconnect":
            return
        text = frame.get("text")
        if text is None:
            logger.warning("ignored a binary message from the page (%d bytes)", len(frame.get("bytes") or b""))
            continue
        try:
            inport.put(message_from_json(text))
        except ValueError as err:
            logger.warning("ignored a message from the page: %s: %.*s", err, LOGGED_TEXT_CHARACTERS, text)


async def send_all(websocket: WebSocket, outbox: asyncio.Queue[str | None]) -> None:
    """Send the model's messages in the order perform made them, until None; stop sending if the page is gone."""
    while (text := await outbox.get()) is not None:
        try:
            await websocket.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            logger.debug("the page left before %s reached it", text)
            while await outbox.get() is not None:
                pass
            return


def serve_live_page(
    make_partner: Callable[[], Partner],
    tempo_bpm: float,
    port: int = 8503,
    address: str = "localhost",
    open_browser: bool = True,
) -> int:
    """Serve the live page at http://`address`:`port` with uvicorn, in this process, until Ctrl-C.

    Open connections are closed on the way out, so every performance silences the model's notes.

    Returns:
        0, when the server ends by itself.
    Raises:
        MusicLSTMError: a port outside 1-65535, an address that is not this machine's, or a port in use.
        KeyboardInterrupt: Ctrl-C (or SIGTERM where the caller turns it into one), raised again once the
            server has stopped.
    """
    import uvicorn

    check_port_free(address, port)
    app = live_app(make_partner, tempo_bpm)
    config = uvicorn.Config(app, host=address, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    if open_browser:
        opener = threading.Thread(target=open_when_listening, args=(server, page_address(address, port)), daemon=True)
        opener.start()
    try:
        with one_thread():
            server.run()
    except SystemExit as err:  # uvicorn exits where it cannot start (a port taken since it was checked)
        raise MusicLSTMError(
            f"cannot serve the live page on {address} port {port}; the reason is logged above"
        ) from err
    return 0


def open_when_listening(server: uvicorn.Server, address: str) -> bool:
    """Open `address` in the user's browser once `server` listens; False if it never did, or no browser opened."""
    deadline = time.monotonic() + BROWSER_WAIT_SECONDS
    while not server.started:
        if server.should_exit or time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return open_in_browser(address)
