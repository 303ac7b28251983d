"""Debian's headless Chromium for the browser tests, driven by Playwright, kept on this machine.

Chromium is /usr/bin/chromium (installed by `make setup` as root), started with its own empty profile;
every request that would leave localhost is refused and counted. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MISSING = "Chromium is not installed (make setup installs it as root)"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",  # the live page's synth sounds without a click first
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def localhost_page(profile: Path, last_screenshot: str):
    """A page in headless Chromium with the empty profile `profile`; yields (page, the requests refused for leaving
    localhost), and keeps a screenshot named `last_screenshot` of where it ended (where a failure left it)."""
    from playwright.sync_api import sync_playwright

    refused = []

    def localhost_only(route):
        if urlparse(route.request.url).hostname in ("localhost", "127.0.0.1"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        context.route("**/*", localhost_only)
        page = context.new_page()
        yield page, refused
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / last_screenshot, full_page=True)
        context.close()
