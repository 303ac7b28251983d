"""Playing live with the bundled model: a melody replayed as the player, harmonized at once or answered after a rest.

The replays run on a clock that jumps ahead when the loop sleeps, so they take the time the model takes and
come out the same on a slow machine as on a fast one; the Ctrl-C and SIGTERM tests run the command on the
wall clock. No MIDI system is needed: ports are objects here, and the test of real virtual ports skips
where the machine has none (no ALSA sequencer, as in CI).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import mido
import pretty_midi
import pytest

import musiclstm
from musiclstm import cli
from musiclstm.config import LiveConfig, MusicLSTMError
from musiclstm.network.sampling import scale_mask
from musiclstm.playing import ports
from musiclstm.playing.partner import open_partner
from musiclstm.playing.ports import FilePlayer, Recorder
from musiclstm.playing.session import perform

TEMPO = 120.0
STEP_SECONDS = 60 / TEMPO / 4  # a sixteenth
C_MAJOR = [60, 62, 64, 65, 67, 69, 71, 72]


class JumpingClock:
    """The performance's time, which jumps to the end of every sleep: the loop runs as fast as it can, in order."""

    speed = 1.0

    def __init__(self):
        self.seconds = 0.0

    def now(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        self.seconds += max(seconds, 1e-5)


class Capture:
    """An output port that keeps what it is sent, with the clock's time."""

    def __init__(self, clock):
        self.clock, self.sent = clock, []

    def send(self, message: mido.Message) -> None:
        self.sent.append((self.clock.now(), message))


def write_melody(path: Path, pitches: list[int], beats: float = 1.0, rest_beats: float = 0.0) -> Path:
    """A one-voice MIDI file at TEMPO: each pitch held `beats`, then `rest_beats` of silence before the last release."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    piano = pretty_midi.Instrument(0)
    for index, pitch in enumerate(pitches):
        start = index * beats * 60 / TEMPO
        piano.notes.append(pretty_midi.Note(90, pitch, start, start + beats * 60 / TEMPO - 0.01))
    midi.instruments.append(piano)
    midi.write(str(path))
    return path


def sounding_at(sent: list[tuple[float, mido.Message]], seconds: float) -> set[int]:
    """The pitches the model sounds at `seconds`, from what it sent."""
    sounding: set[int] = set()
    for when, message in sent:
        if when > seconds:
            break
        if message.type == "note_on" and message.velocity > 0:
            sounding.add(message.note)
        else:
            sounding.discard(message.note)
    return sounding


def nothing_left_sounding(sent: list[tuple[float, mido.Message]]) -> bool:
    return sounding_at(sent, float("inf")) == set()


def replay(tmp_path: Path, melody: Path, live: LiveConfig, **settings) -> tuple[dict, Capture, Path]:
    clock = JumpingClock()
    partner = open_partner(None, live, seed=7, **settings)
    player, output = FilePlayer(melody, clock), Capture(clock)
    recording = tmp_path / "performance.mid"
    report = perform(partner, player, output, TEMPO, clock, Recorder(recording, TEMPO))
    return report, output, recording


def test_a_replayed_melody_comes_back_on_top_with_voices_under_it_at_its_steps(tmp_path):
    melody = C_MAJOR + C_MAJOR[::-1]
    report, output, recording = replay(tmp_path, write_melody(tmp_path / "melody.mid", melody), LiveConfig())
    assert report["ended"] == "the replayed file ended"
    assert report["press_ms"]["count"] >= 0.9 * len(melody)  # presses answered at once, with voices
    with_voices = 0
    for index, pitch in enumerate(melody):
        for step in range(4):  # each note is a beat: four sixteenth steps
            voices = sounding_at(output.sent, (index * 4 + step + 0.5) * STEP_SECONDS)
            assert all(voice < pitch for voice in voices), (index, step, pitch, voices)
            with_voices += bool(voices)
    assert with_voices >= 0.9 * 4 * len(melody)
    assert nothing_left_sounding(output.sent)
    tracks = mido.MidiFile(recording).tracks
    assert [track.name for track in tracks] == ["musiclstm live", "player", "musiclstm"]
    played = [message.note for message in tracks[1] if message.type == "note_on" and message.velocity]
    assert played == melody
    assert sum(message.type == "note_on" for message in tracks[2]) == sum(m.type == "note_on" for _, m in output.sent)


def test_voices_released_with_the_last_key_and_struck_once_a_step(tmp_path):
    partner = open_partner(None, LiveConfig(), seed=1)
    changes = partner.press(72)
    assert changes and all(is_on and pitch < 72 for pitch, is_on in changes)
    assert partner.release(72) == [(pitch, False) for pitch, _ in sorted(changes)]
    assert partner.tick() == []  # nothing held: the next step is silent
    assert partner.press(20) == []  # off the keyboard: ignored


def test_presses_after_rests_are_answered_at_once_with_voices_under_them():
    partner = open_partner(None, LiveConfig(), seed=5)
    for _ in range(32):  # the player has not begun
        partner.tick()
    answered = 0
    for pitch in C_MAJOR:
        answered += any(is_on and sounding < pitch for sounding, is_on in partner.press(pitch))
        for _ in range(3):
            partner.tick()
        partner.release(pitch)
        for _ in range(2):  # staccato: two silent steps before the next note
            partner.tick()
    assert answered >= len(C_MAJOR) - 1


def test_with_a_delay_the_voices_sound_the_delay_later_under_their_step_s_melody(tmp_path):
    melody = C_MAJOR
    live = LiveConfig(delay=2, lookahead=4)
    report, output, _ = replay(tmp_path, write_melody(tmp_path / "melody.mid", melody), live)
    assert report["press_ms"]["count"] == 0  # nothing answers a press: the voices wait
    first = min(when for when, message in output.sent if message.type == "note_on")
    assert first >= 2 * STEP_SECONDS
    for index, pitch in enumerate(melody):
        for step in range(4):
            late = (index * 4 + step + 2 + 0.5) * STEP_SECONDS
            assert all(voice < pitch for voice in sounding_at(output.sent, late)), (index, step)
    assert nothing_left_sounding(output.sent)


def test_a_phrase_is_answered_after_the_wait_in_its_key(tmp_path):
    phrase = [60, 64, 67, 72, 71, 67, 65, 64, 62, 60]  # C major, eighth notes
    live = LiveConfig(mode="answer", wait=2.0, bars=1)
    melody = write_melody(tmp_path / "phrase.mid", phrase, beats=0.5)
    report, output, recording = replay(tmp_path, melody, live)  # an answer keeps to the key by default
    phrase_end = len(phrase) * 0.5 * 60 / TEMPO
    answer = [(when, message) for when, message in output.sent]
    starts = [when for when, message in answer if message.type == "note_on"]
    assert starts, "no answer"
    wait_end = phrase_end + 2 * 60 / TEMPO
    assert wait_end - STEP_SECONDS <= starts[0] <= wait_end + STEP_SECONDS  # at most a step after the wait
    assert starts[-1] < wait_end + 4 * 60 / TEMPO  # one bar long
    in_key = scale_mask("C", "major")
    assert all(in_key[message.note - 21] for _, message in answer if message.type == "note_on")
    assert report["answer_ms"]["count"] == 1
    assert nothing_left_sounding(output.sent)
    assert [track.name for track in mido.MidiFile(recording).tracks][1:] == ["player", "musiclstm"]


def test_a_key_pressed_during_the_answer_ends_it_at_once():
    partner = open_partner(None, LiveConfig(mode="answer", wait=1.0, bars=4), seed=3)
    for pitch in (60, 64, 67):
        partner.press(pitch)
        partner.tick()
        partner.release(pitch)
    sounding: set[int] = set()
    for _ in range(4 + 16 * 4):  # the wait, then into the answer until it sounds
        for pitch, is_on in partner.tick():
            (sounding.add if is_on else sounding.discard)(pitch)
        if partner.answering and sounding:
            break
    assert partner.answering and sounding
    ended = partner.press(62)
    assert {pitch for pitch, is_on in ended if not is_on} == sounding and not partner.answering


class ClosingInput:
    """A player's port that closes (a keyboard unplugged) after its messages, a key still held."""

    def __init__(self, messages: list[mido.Message], clock: JumpingClock, close_at: float):
        self.messages, self.clock, self.close_at = list(messages), clock, close_at

    @property
    def closed(self) -> bool:
        return self.clock.now() >= self.close_at

    def poll(self):
        return self.messages.pop(0) if self.messages else None


def test_an_input_that_vanishes_mid_note_ends_every_note_and_keeps_the_recording(tmp_path):
    clock = JumpingClock()
    held = [mido.Message("note_on", note=72, velocity=90), mido.Message("note_on", note=76, velocity=90)]
    output = Capture(clock)
    recording = tmp_path / "kept.mid"
    report = perform(
        open_partner(None, LiveConfig(), seed=2),
        ClosingInput(held, clock, 1.0),
        output,
        TEMPO,
        clock,
        Recorder(recording, TEMPO),
    )
    assert report["ended"] == "the input port closed"
    assert sounding_at(output.sent, 0.9)  # the model was playing under the held keys
    assert nothing_left_sounding(output.sent)
    told = musiclstm.format_performance(report | dict(mode="harmonize", tempo_bpm=TEMPO, recording=str(recording)))
    assert "the input port closed" in told.splitlines()[0]
    player = [message.note for message in mido.MidiFile(recording).tracks[1] if message.type == "note_on"]
    assert player == [72, 76]


def test_a_system_port_no_longer_listed_reads_as_closed(monkeypatch):
    listed = ["Keyboard 1"]
    monkeypatch.setattr(ports.mido, "get_input_names", lambda: list(listed))
    monkeypatch.setattr(ports, "CHECK_GONE_SECONDS", 0.0)
    port = SimpleNamespace(name="Keyboard 1", closed=False, poll=lambda: None, close=lambda: None)
    watched = ports.WatchedInput(port)
    assert not watched.closed
    listed.clear()  # unplugged: python-rtmidi's port itself goes on answering nothing
    assert watched.closed


def test_list_ports_without_a_midi_system_says_so_in_one_line(capsys):
    try:
        musiclstm.list_ports()
    except MusicLSTMError:
        assert cli.main(["live", "--list-ports"]) == 2
        assert "no MIDI ports here" in capsys.readouterr().err
    else:
        assert cli.main(["live", "--list-ports"]) == 0
        assert "MIDI inputs:" in capsys.readouterr().out


class InterruptedOutput(Capture):
    """An output interrupted (Ctrl-C) while it sends its `at`-th message, which it never sends."""

    def __init__(self, clock, at: int):
        super().__init__(clock)
        self.at = at

    def send(self, message: mido.Message) -> None:
        if len(self.sent) + 1 == self.at:
            self.at = 0
            raise KeyboardInterrupt
        super().send(message)


@pytest.mark.parametrize("at", [1, 2, 3, 5, 8])
def test_ctrl_c_in_the_middle_of_a_chord_still_ends_every_note_sent(tmp_path, at):
    clock = JumpingClock()
    output = InterruptedOutput(clock, at)
    melody = write_melody(tmp_path / "melody.mid", C_MAJOR)
    with pytest.raises(KeyboardInterrupt):
        perform(open_partner(None, LiveConfig(), seed=2), FilePlayer(melody, clock), output, TEMPO, clock)
    assert nothing_left_sounding(output.sent)
    assert all(message.type == "note_off" for _, message in output.sent[at - 1 :])


def test_steps_follow_the_midi_clock_received():
    clock = JumpingClock()
    ticks = [mido.Message("start")] + [mido.Message("clock")] * (6 * 10 + 3)
    partner = open_partner(None, LiveConfig(), seed=2)
    perform(partner, ClosingInput(ticks, clock, 5.0), Capture(clock), TEMPO, clock, follow_clock=True)
    assert partner.step == 10  # 6 clock ticks a sixteenth; the internal clock would have made 40 in 5 s


def long_melody(path: Path) -> Path:
    return write_melody(path, (C_MAJOR + C_MAJOR[::-1]) * 8, beats=1.0)  # 64 beats: 32 s at 120 bpm


@pytest.mark.parametrize(("stop", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_and_sigterm_end_every_note_and_leave_a_whole_recording(tmp_path, stop, status):
    recording = tmp_path / "stopped.mid"
    command = [str(Path(sys.executable).with_name("musiclstm")), "-v", "live"]
    command += ["--play", str(long_melody(tmp_path / "long.mid"))]
    command += ["--record", str(recording), "--seed", "4"]
    live = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    for line in live.stderr:
        if line.startswith("playing along"):
            break
    else:
        pytest.fail(f"live never began (status {live.wait()})")
    time.sleep(2.0)  # the model plays under the replayed melody
    live.send_signal(stop)
    rest = live.stderr.read()
    assert live.wait(timeout=30) == status, rest
    assert "every file written so far is whole" in rest
    model = [
        (0.0, message) for message in mido.MidiFile(recording).tracks[2] if message.type in ("note_on", "note_off")
    ]
    assert any(message.type == "note_on" for _, message in model)
    assert nothing_left_sounding(model)  # every note the model struck was ended
    assert any(message.type == "note_on" for message in mido.MidiFile(recording).tracks[1])


def test_live_settings_and_inputs_are_checked_by_name(tmp_path):
    with pytest.raises(MusicLSTMError, match="speed needs --play"):
        LiveConfig(speed=4)
    with pytest.raises(MusicLSTMError, match="delay is harmonize's"):
        LiveConfig(mode="answer", delay=2)
    with pytest.raises(MusicLSTMError, match="lookahead needs a delay"):
        LiveConfig(lookahead=8)
    with pytest.raises(MusicLSTMError, match="unknown mode .duet."):
        LiveConfig(mode="duet")
    with pytest.raises(MusicLSTMError, match="length means nothing"):
        open_partner(None, LiveConfig(), length=64)
    (tmp_path / "broken.mid").write_bytes(b"MThd broken")
    with pytest.raises(MusicLSTMError, match="broken.mid"):
        musiclstm.play_live(None, LiveConfig(play=str(tmp_path / "broken.mid")))
    assert cli.main(["live", "--speed", "2"]) == 2


def test_real_virtual_ports_carry_notes_where_the_machine_has_a_midi_system():
    try:
        ports = musiclstm.list_ports()
        port = mido.open_output("musiclstm test", virtual=True)
    except Exception as err:  # no ALSA sequencer (as in CI), or no MIDI system at all
        pytest.skip(f"no MIDI system on this machine: {err}")
    try:
        assert isinstance(ports["inputs"], list)
        assert "musiclstm test" in " ".join(mido.get_input_names())
    finally:
        port.close()
