"""Where a live performance's notes come from and go: MIDI ports, a MIDI file replayed as the player, a recording.

A port is anything mido-like: an input has `poll()` (a `mido.Message` or None) and `closed`; an output
has `send(message)`. Real ports go through mido's python-rtmidi backend (`open_ports`); on a machine
with no MIDI system (no ALSA sequencer, as in CI) opening one is a MusicLSTMError that says so.
`FilePlayer` replays a MIDI file's notes as an input port, on the performance's clock; `Recorder` keeps
every note that passes, the player's and the model's on their own tracks, and writes them as one MIDI
file when the performance ends. Times are the performance's seconds (`Clock.now`), which `speed` scales.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mido

from musiclstm.config import MusicLSTMError
from musiclstm.files import write_atomically
from musiclstm.music.roll import load_midi

VIRTUAL_NAME = "musiclstm"  # the name of the virtual ports `--virtual` makes
TICKS_PER_BEAT = 480
PLAYER_CHANNEL, MODEL_CHANNEL = 0, 1
MODEL_VELOCITY = 80
CHECK_GONE_SECONDS = 1.0  # how often a named port is looked for among the system's (an unplugged keyboard)


class Clock:
    """The performance's time in seconds, `speed` times faster than the wall clock's, and a sleep on it."""

    def __init__(self, speed: float = 1.0):
        self.speed, self.start = speed, time.perf_counter()

    def now(self) -> float:
        return (time.perf_counter() - self.start) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(seconds, 0) / self.speed)


def midi_system(action):
    """Run `action()` on the MIDI system, its failure (no ALSA sequencer, no such port) a MusicLSTMError.

    ALSA's library writes its own complaint to the process's stderr (file descriptor 2) before python-rtmidi
    raises; it is silenced meanwhile, so that the error is one line.
    """
    try:
        with quiet_stderr():
            return action()
    except MusicLSTMError:
        raise
    except Exception as err:  # python-rtmidi raises its own SystemError and InvalidPortError types
        raise MusicLSTMError(
            f"no MIDI ports here: the MIDI system cannot be opened ({err}); without one, --play replays a "
            "file as the player and --page plays in the browser"
        ) from err


@contextmanager
def quiet_stderr():
    """Send what C libraries write to file descriptor 2 to /dev/null meanwhile."""
    sys.stderr.flush()
    kept = os.dup(2)
    try:
        with open(os.devnull, "wb") as nowhere:
            os.dup2(nowhere.fileno(), 2)
        yield
    finally:
        os.dup2(kept, 2)
        os.close(kept)


def list_ports() -> dict[str, list[str]]:
    """The MIDI ports this machine has: {"inputs": [...], "outputs": [...]}."""
    return midi_system(lambda: {"inputs": mido.get_input_names(), "outputs": mido.get_output_names()})


def open_input(name: str | None, virtual: bool = False):
    """The input port called `name` (None: the first there is), or a new virtual one (`virtual`)."""
    if virtual:
        return midi_system(lambda: mido.open_input(name or VIRTUAL_NAME, virtual=True))
    names = list_ports()["inputs"]
    if not names:
        raise MusicLSTMError(
            "no MIDI input port: plug in a keyboard, make a port with --virtual, or replay a file with --play"
        )
    if name is not None and name not in names:
        raise MusicLSTMError(f"no MIDI input port called {name!r}: there are {', '.join(map(repr, names))}")
    return WatchedInput(midi_system(lambda: mido.open_input(name or names[0])))


def open_output(name: str | None, virtual: bool = False):
    """The output port called `name` (None: the first there is), or a new virtual one (`virtual`)."""
    if virtual:
        return midi_system(lambda: mido.open_output(name or VIRTUAL_NAME, virtual=True))
    names = list_ports()["outputs"]
    if not names:
        raise MusicLSTMError("no MIDI output port: name a synthesizer with --output, or make a port with --virtual")
    if name is not None and name not in names:
        raise MusicLSTMError(f"no MIDI output port called {name!r}: there are {', '.join(map(repr, names))}")
    return midi_system(lambda: mido.open_output(name or names[0]))


class WatchedInput:
    """A named system input port that reads as `closed` once the system no longer lists it (a keyboard unplugged:
    python-rtmidi itself goes on answering nothing)."""

    def __init__(self, port):
        self.port, self.name, self.checked = port, port.name, time.monotonic()
        self.is_gone = False

    @property
    def closed(self) -> bool:
        if not self.is_gone and time.monotonic() - self.checked > CHECK_GONE_SECONDS:
            self.checked = time.monotonic()
            try:
                self.is_gone = self.name not in mido.get_input_names()
            except Exception:  # the MIDI system itself went away
                self.is_gone = True
        return self.is_gone or self.port.closed

    def poll(self):
        return self.port.poll()

    def close(self) -> None:
        self.port.close()


class NoOutput:
    """An output that sends nowhere: the model's part goes to the recording alone."""

    closed = False

    def send(self, message: mido.Message) -> None:
        pass


class FilePlayer:
    """A MIDI file's notes replayed as an input port on `clock`, from its first note at the first poll: each
    note_on and note_off is given once its time has come. Drum tracks are left out."""

    def __init__(self, path: str | Path, clock: Clock):
        midi = load_midi(path)
        notes = [note for part in midi.instruments if not part.is_drum for note in part.notes]
        if not notes:
            raise MusicLSTMError(f"{path}: no notes to play (drum tracks are left out)")
        first = min(note.start for note in notes)
        events = [(note.end - first, 0, note.pitch, 0) for note in notes]
        events += [(note.start - first, 1, note.pitch, max(note.velocity, 1)) for note in notes]
        self.events = sorted(events)  # a release before a press at the same time: a repeated key sounds again
        _, tempos = midi.get_tempo_changes()
        self.tempo_bpm = float(tempos[0]) if len(tempos) else None
        self.clock, self.start, self.next = clock, None, 0
        self.closed = False

    @property
    def finished(self) -> bool:
        return self.next == len(self.events)

    @property
    def seconds(self) -> float:
        """How long the replayed notes last, from the first press to the last release."""
        return self.events[-1][0]

    def poll(self) -> mido.Message | None:
        if self.start is None:
            self.start = self.clock.now()
        if self.finished or self.events[self.next][0] > self.clock.now() - self.start:
            return None
        seconds, is_press, pitch, velocity = self.events[self.next]
        self.next += 1
        kind = "note_on" if is_press else "note_off"
        return mido.Message(kind, note=pitch, velocity=velocity, channel=PLAYER_CHANNEL)

    def close(self) -> None:
        self.closed = True


@dataclass
class Recorder:
    """Every note of a performance, the player's and the model's, written to `path` as a MIDI file at the end."""

    path: Path
    tempo_bpm: float
    notes: list[tuple[float, int, mido.Message]] = field(default_factory=list)  # (seconds, track, message)

    def add(self, seconds: float, track: int, message: mido.Message) -> None:
        """Keep `message` at `seconds` on track 1 (the player's) or 2 (the model's)."""
        self.notes.append((seconds, track, message))

    def midi(self) -> mido.MidiFile:
        """The recording: a tempo track, then the player's track and the model's."""
        midi = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
        tempo = mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(self.tempo_bpm))
        midi.tracks.append(mido.MidiTrack([mido.MetaMessage("track_name", name="musiclstm live"), tempo]))
        for track, name in ((1, "player"), (2, "musiclstm")):
            messages, last = mido.MidiTrack([mido.MetaMessage("track_name", name=name)]), 0
            for seconds, _, message in sorted((note for note in self.notes if note[1] == track), key=lambda n: n[0]):
                tick = round(seconds * self.tempo_bpm / 60 * TICKS_PER_BEAT)
                messages.append(message.copy(time=tick - last))
                last = tick
            midi.tracks.append(messages)
        return midi

    def save(self) -> None:
        """Write the recording whole, or not at all (a temporary file renamed into place)."""
        midi = self.midi()
        write_atomically(Path(self.path), lambda file: midi.save(file=file))
