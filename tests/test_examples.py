"""The example MIDI files that ship with musiclstm (src/musiclstm/examples/), so every example in the README runs on
a fresh clone: how they are written, and a test that they are what this file writes.

melody.mid   "Ode to Joy" (Beethoven, 1824), 8 bars of one line in D major, 4/4, 120 beats per minute.
chorale.mid  Bach's chorale BWV 66.6, all four voices, from music21's corpus.
piano.mid    the first 16 bars of Scott Joplin's "Maple Leaf Rag" (1899), from music21's corpus.
All three are in the public domain. `python tests/test_examples.py` writes them again.
"""

from pathlib import Path

import mido
import numpy as np
import pytest
from music21 import corpus

from musiclstm import midi_to_roll

EXAMPLES = Path(__file__).parents[1] / "src" / "musiclstm" / "examples"
TICKS_PER_BEAT = 480
# Ode to Joy: (MIDI pitch, beats). F#4 F#4 G4 A4 | A4 G4 F#4 E4 | D4 D4 E4 F#4 | F#4. E8 E2 | ... twice.
ODE_TO_JOY = [
    (66, 1), (66, 1), (67, 1), (69, 1), (69, 1), (67, 1), (66, 1), (64, 1),
    (62, 1), (62, 1), (64, 1), (66, 1), (66, 1.5), (64, 0.5), (64, 2),
    (66, 1), (66, 1), (67, 1), (69, 1), (69, 1), (67, 1), (66, 1), (64, 1),
    (62, 1), (62, 1), (64, 1), (66, 1), (64, 1.5), (62, 0.5), (62, 2),
]  # fmt: skip


def write_melody(path: Path) -> None:
    """Write the tune as one track: a time signature, a tempo, and each note struck (repeated notes included)."""
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(120), time=0))
    track.append(mido.Message("program_change", program=0, time=0))
    for pitch, beats in ODE_TO_JOY:
        ticks = round(beats * TICKS_PER_BEAT)
        track.append(mido.Message("note_on", note=pitch, velocity=80, time=0))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=ticks - 10))
        track.append(mido.Message("note_off", note=pitch, velocity=0, time=10))  # a short gap before the next
    track.append(mido.MetaMessage("end_of_track", time=0))
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    midi.tracks.append(track)
    midi.save(path)


def write_from_corpus(name: str, path: Path, last_bar: int | None = None) -> None:
    """Write a piece of music21's corpus as MIDI, cut after `last_bar` when given."""
    score = corpus.parse(name)
    if last_bar is not None:
        score = score.measures(0, last_bar)
    score.write("midi", fp=str(path))


WRITERS = {
    "melody.mid": write_melody,
    "chorale.mid": lambda path: write_from_corpus("bwv66.6", path),
    "piano.mid": lambda path: write_from_corpus("joplin/maple_leaf_rag", path, last_bar=16),
}


def main() -> None:
    for name, write in WRITERS.items():
        write(EXAMPLES / name)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_the_shipped_example_is_the_music_this_file_writes(name, tmp_path):
    WRITERS[name](tmp_path / name)
    shipped, written = midi_to_roll(EXAMPLES / name, 4), midi_to_roll(tmp_path / name, 4)
    assert np.array_equal(shipped.roll, written.roll) and np.array_equal(shipped.onsets, written.onsets)
    assert shipped.grid == written.grid


def test_ode_to_joy_keeps_its_repeated_notes_and_fills_eight_bars_of_four_four():
    melody = midi_to_roll(EXAMPLES / "melody.mid", 4)
    assert melody.reading.n_notes == len(ODE_TO_JOY) == 30
    assert melody.onsets.sum() == 30  # F# F#, D D, E E: each struck again, none merged
    assert melody.roll.shape[0] == 8 * 16 and melody.grid.beats_per_bar == 4


if __name__ == "__main__":
    main()
