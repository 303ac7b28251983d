"""The live loop: a partner, an input port, an output port and a step clock, until the performance ends.

`perform` takes each message as it arrives (a press or release goes to the partner at once, its answer
sent at once) and ends a step every `60 / tempo / steps_per_beat` seconds of the clock, or every
`24 / steps_per_beat` MIDI clock messages where it follows the clock it receives. It ends when the
input closes (a keyboard unplugged), when a replayed file has ended and the partner owes nothing,
or on Ctrl-C or SIGTERM (raised again): whichever way, every note the model sounds is ended, and a
recording is written whole. It measures itself: from each press to the model's notes sent, and from
each step's time to its notes sent. Nothing here prints.
"""

from __future__ import annotations

import logging
import time

import mido
import numpy as np

from musiclstm.config import MusicLSTMError
from musiclstm.playing.partner import Partner
from musiclstm.playing.ports import MODEL_CHANNEL, MODEL_VELOCITY, Clock, Recorder

log = logging.getLogger(__name__)

POLL_SECONDS = 0.0005  # how long the loop sleeps when nothing has arrived and no step is due
MIDI_CLOCKS_PER_BEAT = 24  # MIDI beat clock: 24 `clock` messages a quarter note
PLAYER_TRACK, MODEL_TRACK = 1, 2


def perform(
    partner: Partner,
    inport,
    outport,
    tempo_bpm: float,
    clock: Clock | None = None,
    recorder: Recorder | None = None,
    follow_clock: bool = False,
) -> dict:
    """Play along with the player on `inport`, sending the model's notes to `outport`, until the performance ends.

    Args:
        partner: the model playing along (`open_partner`).
        inport: a mido-style input: `poll()` gives a message or None; `closed` ends the performance; a `finished`
            attribute that turns true (a `FilePlayer`) ends it once the partner owes nothing more.
        outport: a mido-style output: `send(message)`.
        tempo_bpm: beats per minute of the step clock.
        clock: the performance's time: `now()`, `sleep(seconds)` and its `speed` (default: the wall clock's).
        recorder: where every note that passes is kept, written when the performance ends.
        follow_clock: end a step at every `24 / steps_per_beat` MIDI clock messages received, not by the clock.

    Returns:
        what happened: steps, how it ended, seconds, and the latencies in ms (`press_ms`: from a press arriving to
        the model's notes sent; `step_ms`: from a step's time to its notes sent; `answer_ms`: the same for the
        first step of each answer).
    Raises:
        KeyboardInterrupt: Ctrl-C or SIGTERM, raised again once every note is off and the recording written.
    """
    clock = clock or Clock()
    if follow_clock and MIDI_CLOCKS_PER_BEAT % partner.steps_per_beat:
        raise MusicLSTMError(
            f"a model of {partner.steps_per_beat} steps per beat cannot follow a MIDI clock of 24 ticks per beat"
        )
    clocks_per_step = MIDI_CLOCKS_PER_BEAT // partner.steps_per_beat
    step_seconds = 60 / tempo_bpm / partner.steps_per_beat
    start = clock.now()
    due, clocks, late = start + step_seconds, 0, 0
    latencies: dict[str, list[float]] = {"press_ms": [], "step_ms": [], "answer_ms": []}

    sent: set[int] = set()  # the pitches the output sounds: a note is counted before its note_on leaves

    def send(changes, since: float, measured: str | None) -> None:
        when = clock.now() - start
        for pitch, is_on in changes:
            message = mido.Message("note_on" if is_on else "note_off", note=pitch, channel=MODEL_CHANNEL)
            message = message.copy(velocity=MODEL_VELOCITY) if is_on else message
            if is_on:
                sent.add(pitch)
            outport.send(message)
            if not is_on:
                sent.discard(pitch)
            if recorder is not None:
                recorder.add(when, MODEL_TRACK, message)
        if measured and any(is_on for _, is_on in changes):
            latencies[measured].append((time.perf_counter() - since) * 1000)

    def step(since: float) -> None:
        answering = partner.answering
        changes = partner.tick()
        send(changes, since, "answer_ms" if partner.answering and not answering else "step_ms")

    ended = "the replayed file ended"
    try:
        while True:
            if inport.closed:
                ended = "the input port closed"
                break
            try:
                message = inport.poll()
            except OSError as err:  # a port whose device failed under it
                ended = f"the input port failed ({err})"
                break
            if message is not None:
                arrived = time.perf_counter()
                if message.type in ("note_on", "note_off") and recorder is not None:
                    recorder.add(clock.now() - start, PLAYER_TRACK, message)
                if message.type == "note_on" and message.velocity > 0:
                    send(partner.press(message.note), arrived, "press_ms")
                elif message.type in ("note_on", "note_off"):
                    send(partner.release(message.note), arrived, None)
                elif follow_clock and message.type == "clock":
                    clocks += 1
                    if clocks % clocks_per_step == 0:
                        step(arrived)
                elif follow_clock and message.type == "stop":
                    send(partner.all_off(), arrived, None)
                continue
            if getattr(inport, "finished", False) and partner.idle:
                break
            now = clock.now()
            if follow_clock or now < due:
                clock.sleep(POLL_SECONDS if follow_clock else min(POLL_SECONDS, due - now))
                continue
            step(time.perf_counter() - (now - due) / clock.speed)  # since the step was due, in wall seconds
            due += step_seconds
            if clock.now() > due:  # a step took longer than a step: start again from now rather than rush
                late += 1
                due = clock.now() + step_seconds
    finally:
        try:  # the notes the output sounds, whatever the partner thinks: an interrupt may fall between the two
            send([(pitch, False) for pitch in sorted(sent)], time.perf_counter(), None)
        except Exception as err:  # the output went away too: nothing is left to end
            log.warning("could not end the model's notes: %s", err)
        if recorder is not None:
            recorder.save()
    report = dict(steps=partner.step, ended=ended, seconds=clock.now() - start, late_steps=late)
    return report | {name: summary(values) for name, values in latencies.items()}


def summary(values: list[float]) -> dict:
    """The count, median, 99th percentile and maximum of latencies in ms (None where there are none)."""
    if not values:
        return dict(count=0, p50=None, p99=None, max=None)
    return dict(
        count=len(values),
        p50=float(np.percentile(values, 50)),
        p99=float(np.percentile(values, 99)),
        max=float(np.max(values)),
    )
