"""Benchmark the live page's round trip: a key pressed in the browser to the model's first note heard back.

Serves `live_app` on the bundled model (harmonize mode, unless --mode says otherwise) with uvicorn in
a thread, opens the page in headless Chromium (Debian's, /usr/bin/chromium), waits for the model to
load, then presses `--presses` on-screen keys with the mouse, one every `--interval-ms`, each held for
half of that, walking up and down C4..C5. A round trip is the page's own measure (window.liveStats):
from a press (performance.now()) to the first model note_on that arrives after it, so it holds the
socket both ways, the wait for the next step of the clock (a sixteenth: 150 ms at 100 bpm) and the
model's step. Prints p50, p99 and the maximum in ms beside the CPU model: of every press, and of the
presses the model answered while the key was held (in harmonize, a press the model draws no voice
under waits for the next step that has one, or the next press: that is the music, not the latency).

    .venv/bin/python benchmarks/bench_live_browser.py [--presses 40] [--interval-ms 600] [--tempo 100]
Asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import threading
import time

import torch
import uvicorn
from playwright.sync_api import sync_playwright

from musiclstm.composing.composer import open_composer
from musiclstm.config import LiveConfig
from musiclstm.network.bundle import cpu_name
from musiclstm.playing.partner import open_partner
from musiclstm.playing.session import summary
from musiclstm.playing.web import live_app

WALK = [60, 62, 64, 65, 67, 69, 71, 72, 71, 69, 67, 65, 64, 62]  # C4 up to C5 and back, white keys only


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def round_trips_ms(address: str, presses: int, interval_ms: int, load_timeout_s: float) -> dict:
    """Play `presses` keys on the page at `address` in headless Chromium; return window.liveStats."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(address)
        page.locator("#status.connected").wait_for(timeout=load_timeout_s * 1000)
        for index in range(presses):
            box = page.locator(f'.key[data-pitch="{WALK[index % len(WALK)]}"]').bounding_box()
            page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] * 0.85)
            page.mouse.down()
            page.wait_for_timeout(interval_ms // 2)
            page.mouse.up()
            page.wait_for_timeout(interval_ms - interval_ms // 2)
        page.wait_for_timeout(interval_ms)
        stats = page.evaluate("window.liveStats")
        browser.close()
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=40)
    parser.add_argument("--interval-ms", type=int, default=600, help="from one press to the next")
    parser.add_argument("--tempo", type=float, default=100.0, help="the step clock, beats per minute")
    parser.add_argument("--mode", choices=["harmonize", "answer"], default="harmonize")
    parser.add_argument("--model", default=None, help="a run or model folder (default: the bundled model)")
    args = parser.parse_args()

    port = free_port()
    composer = open_composer(args.model)  # loaded once, as `musiclstm live --page` does; a partner per page
    app = live_app(lambda: open_partner(composer, LiveConfig(mode=args.mode), seed=0), tempo_bpm=args.tempo)
    server = uvicorn.Server(uvicorn.Config(app, host="localhost", port=port, log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    torch.set_num_threads(1)  # as `musiclstm live --page` serves it (`one_thread`)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        started = time.perf_counter()
        stats = round_trips_ms(f"http://localhost:{port}/", args.presses, args.interval_ms, load_timeout_s=120)
        seconds = time.perf_counter() - started
    finally:
        server.should_exit = True
        thread.join(timeout=30)

    trips = stats["roundTripsMs"]
    print(f"CPU: {cpu_name()}; {args.mode} at {args.tempo:g} bpm, {args.presses} presses every {args.interval_ms} ms")
    print(f"pressed {stats['pressed']}, model notes drawn {stats['modelNotesDrawn']}, ", end="")
    print(f"sounded {stats['modelNotesSounded']}, in {seconds:.1f} s (model load included)")
    print_percentiles("round trip, every press", trips)
    held = [trip for trip in trips if trip < args.interval_ms // 2]
    print_percentiles("round trip, presses answered while the key was held", held)
    print(f"  presses the model left without a new note while held: {len(trips) - len(held)} of {len(trips)}")
    print(f"  round trips, ms, in order: {' '.join(f'{trip:.0f}' for trip in trips)}")


def print_percentiles(what: str, values: list[float]) -> None:
    if values:
        latency = summary(values)
        print(f"{what}, ms (n={latency['count']}): ", end="")
        print(f"p50 {latency['p50']:.1f}, p99 {latency['p99']:.1f}, max {latency['max']:.1f}")
    else:
        print(f"{what}: none")


if __name__ == "__main__":
    main()
