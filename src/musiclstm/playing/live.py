"""Play live from the ports a `LiveConfig` names: open the model, the player's input and the model's output, perform.

`play_live` is what `musiclstm live` runs. The player is a MIDI input port (a keyboard, a DAW's port,
or a virtual port made for one) or a MIDI file replayed in time (`play`); the model's notes go to a
MIDI output port, or, where none can be had and something keeps them (a recording, a replayed file),
to the recording alone, with a warning. The step clock runs at the tempo given, else the replayed
file's, else the settings' default; or it follows the MIDI clock the input sends.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path

import torch

from musiclstm.composing.composer import Composer
from musiclstm.config import LiveConfig, MusicLSTMError
from musiclstm.files import check_output_file
from musiclstm.playing.partner import open_partner
from musiclstm.playing.ports import Clock, FilePlayer, NoOutput, Recorder, open_input, open_output
from musiclstm.playing.session import perform

log = logging.getLogger(__name__)


def play_live(model: str | Path | Composer | None = None, live: LiveConfig | None = None, **settings) -> dict:
    """Play along with a player until the input ends, Ctrl-C or SIGTERM; return `session.perform`'s report
    with the tempo and the recording's path added.

    Args:
        model: a run or model folder, or a Composer (None: the bundled model).
        live: the mode, the ports, a file to replay, a recording to write (default LiveConfig()).
        **settings: fields of GenerationSettings; `tempo_bpm` sets the step clock.

    Raises:
        MusicLSTMError: a bad setting, model, file or port, named before the performance starts.
        KeyboardInterrupt: Ctrl-C or SIGTERM, once every note is off and the recording written.
    """
    live = live or LiveConfig()
    record = check_output_file(live.record) if live.record else None
    clock = Clock(live.speed)
    player = FilePlayer(live.play, clock) if live.play else None  # a bad file named before the model opens
    partner = open_partner(model, live, **settings)
    tempo_bpm = settings.get("tempo_bpm") or (player and player.tempo_bpm) or partner.options.tempo_bpm
    inport = player or open_input(live.input, live.virtual)
    outport = None
    try:
        outport = open_output_or_none(live, record is not None or player is not None)
        recorder = Recorder(record, tempo_bpm) if record else None
        log.info("playing along (%s) at %s bpm: Ctrl-C ends it", live.mode, f"{tempo_bpm:g}")
        with one_thread():
            report = perform(partner, inport, outport, tempo_bpm, clock, recorder, follow_clock=live.clock == "midi")
    finally:
        for port in (inport, outport):
            if hasattr(port, "close"):
                port.close()
    return report | dict(mode=live.mode, tempo_bpm=tempo_bpm, recording=str(record) if record else None)


def open_output_or_none(live: LiveConfig, is_kept: bool):
    """The output port `live` names; where none can be opened and something keeps the model's notes (`is_kept`: a
    recording, a replayed file), an output that sends nowhere, with a warning."""
    try:
        return open_output(live.output, live.virtual)
    except MusicLSTMError as err:
        if live.output is not None or not is_kept:
            raise
        log.warning("no MIDI output port to play to: the model's part goes to the recording alone")
        log.debug("%s", err)
        return NoOutput()


@contextmanager
def one_thread():
    """Run torch's operations on one thread meanwhile: at batch 1 a second thread saves nothing, and where another
    program wants the core, an operation waits for its other half: the p99 of a press went from 4 to 23 ms
    (docs: play live)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def format_performance(report: dict) -> str:
    """A performance's report in a few lines: how long, how it ended, the latencies, the recording."""
    length = f"{report['steps']:,} steps ({report['seconds']:.1f} s at {report['tempo_bpm']:g} bpm)"
    lines = [f"Played {length}: {report['ended']}"]
    names = dict(press_ms="from a key pressed to the model's notes", step_ms="from a step's time to its notes")
    names["answer_ms"] = "from the wait's end to the answer's first notes"
    for name, what in names.items():
        latency = report[name]
        if latency["count"]:
            lines.append(f"  {what}: p50 {latency['p50']:.1f} ms, p99 {latency['p99']:.1f} ms ({latency['count']:,})")
    if report["late_steps"]:
        lines.append(f"  {report['late_steps']:,} steps came late (a step took longer than a step)")
    if report["recording"]:
        lines.append(f"Wrote {report['recording']} (your part on track 1, the model's on track 2)")
    return "\n".join(lines)
