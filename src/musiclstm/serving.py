"""Serve a Streamlit page on this machine (the studio, a listening test's rating page) until it is stopped.

`serve_page` checks that the address and port can be served on, starts `streamlit run` as a child
process and waits for it. Ctrl-C and SIGTERM (which the command line raises as KeyboardInterrupt)
stop the server and are raised again, so that the command ends like every other: one line, 130 or
143. The server runs in its own session (a terminal's Ctrl-C reaches this process alone, which stops
it once) and, on Linux, is killed with this process if it dies any other way (SIGKILL, a closed
terminal), as if the two were one, so no server outlives its command. A thread opens the user's
browser once the page answers; where none can be opened, the address to open by hand is logged
once. Nothing here prints or exits.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import webbrowser

from musiclstm.config import MusicLSTMError, check_whole_number

logger = logging.getLogger(__name__)

STOP_SECONDS = 10  # a stopping server's time to end before it is killed
PR_SET_PDEATHSIG = 1  # prctl(2): the signal a child gets when its parent ends
ALL_ADDRESSES = ("0.0.0.0", "::", "")  # served on every interface; the browser is sent to localhost


def serve_page(
    page: str,
    environment: dict[str, str],
    port: int,
    address: str = "localhost",
    open_browser: bool = True,
    options: tuple[str, ...] | list[str] = (),
) -> int:
    """Serve the Streamlit page `page` (a .py file) at http://`address`:`port` until it is stopped.

    The server runs headless (otherwise Streamlit's first run asks for an email address at the
    terminal), with usage statistics off and a toolbar without developer tools; `environment` is
    added to its environment and `options` to its command line.

    Returns:
        0, when the server ends by itself without an error.
    Raises:
        MusicLSTMError: a port outside 1-65535, an address that is not this machine's, a port in use,
            or a server that ended with an error.
        KeyboardInterrupt: Ctrl-C or SIGTERM, raised again once the server has stopped.
    """
    check_port_free(address, port)
    command = [sys.executable, "-m", "streamlit", "run", page, *options]
    command += ["--server.port", str(port), "--server.address", address]
    command += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    command += ["--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]
    sys.stdout.flush()  # what was printed so far comes before the server's own lines
    server = subprocess.Popen(
        command, env=dict(os.environ, **environment), start_new_session=True, preexec_fn=stopped_with(os.getpid())
    )
    try:
        if open_browser:
            threading.Thread(target=open_when_serving, args=(page_address(address, port), server), daemon=True).start()
        status = server.wait()
    except BaseException:
        stop(server)
        raise
    if status != 0:
        raise MusicLSTMError(f"the page server ended with status {status}; its messages are above")
    return status


def check_port_free(address: str, port: int) -> None:
    """Refuse, before a server starts, a port that is not free on `address`, by binding it for a moment.

    Raises:
        MusicLSTMError: a port outside 1-65535, an address that is not this machine's, or a port in use.
    """
    check_whole_number("port", port, 1, 65535)
    try:
        found = socket.getaddrinfo(address, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as err:
        raise MusicLSTMError(f"--address {address}: not an address of this machine ({err})") from err
    for family, kind, protocol, _, where in found:
        try:
            with socket.socket(family, kind, protocol) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is free
                probe.bind(where)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise MusicLSTMError(
                    f"port {port} on {address} is in use (another server?): choose another with --port"
                ) from err
            if family == socket.AF_INET6 and err.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
                continue  # a machine without IPv6: the server skips ::1 too
            raise MusicLSTMError(f"cannot serve on {address} port {port} ({err.strerror})") from err


def page_address(address: str, port: int) -> str:
    """The address a browser on this machine opens to reach a page served on `address`:`port`."""
    host = "localhost" if address in ALL_ADDRESSES else address
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def stopped_with(parent: int):
    """What the server's process runs before Streamlit starts: ask Linux to kill it when `parent` ends.

    SIGKILL, not SIGTERM: the port is free at once for a server started again (every answer is
    committed as it comes, so nothing is lost).
    """
    if not sys.platform.startswith("linux"):
        return None

    def ask() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
        if os.getppid() != parent:  # the parent ended before the request was made
            os._exit(1)

    return ask


def stop(server: subprocess.Popen) -> None:
    """Stop the server: SIGTERM, then SIGKILL after STOP_SECONDS (or at a second Ctrl-C); wait until it is gone."""
    try:
        if server.poll() is None:
            server.terminate()
        server.wait(timeout=STOP_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("the page server did not stop within %d s; killing it", STOP_SECONDS)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def open_when_serving(address: str, server: subprocess.Popen | None = None, timeout_seconds: float = 60) -> bool:
    """Open `address` in the user's browser once the page answers there; False if it never did, or no browser opened.

    Waiting ends early if `server` ends. Where the page answers but no browser can be opened (no
    display, no BROWSER), "no browser found; open <address> yourself" is logged once.
    """
    deadline = time.monotonic() + timeout_seconds
    while True:
        try:
            with urllib.request.urlopen(f"{address}/_stcore/health", timeout=2):
                break
        except OSError:
            if time.monotonic() > deadline or (server is not None and server.poll() is not None):
                return False
            time.sleep(0.3)
    return open_in_browser(address)


def open_in_browser(address: str) -> bool:
    """Open `address` in the user's browser; where none can be opened, log once where to open it yourself."""
    try:
        opened = webbrowser.open(address)
    except webbrowser.Error:
        opened = False
    if not opened:
        logger.warning("no browser found; open %s yourself", address)
    return opened
