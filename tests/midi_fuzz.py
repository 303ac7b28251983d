"""Hostile MIDI files for the fuzz test and benchmark: mutated real files and crafted extremes.

`fuzz_cases(seeds, rng)` yields (name, bytes) pairs: each real seed file mutated (bytes flipped,
truncated, a chunk duplicated), plus random bytes, empty files, type-2 files, absurd tempos and
resolutions, 10,000 tracks, 20,000 notes, notes that all fall off the keyboard, and a far-away event.
"""

from __future__ import annotations

import io
import random
import struct

import mido

from musiclstm.music.roll import MAX_MIDI_BYTES

CRAFTED = (
    "empty",
    "random_bytes",
    "header_then_random",
    "type_2",
    "tempo_1_microsecond",
    "tempo_maximum",
    "ten_thousand_tracks",
    "twenty_thousand_notes",
    "all_off_keyboard",
    "resolution_1_far_note",
    "resolution_1_day_long_note",
    "over_the_size_limit",
    "maximum_delta_time",
    "zero_resolution",
    "track_length_lies",
)


def midi_bytes(tracks: list[list], ticks_per_beat: int = 480, file_type: int = 1) -> bytes:
    file = mido.MidiFile(type=file_type, ticks_per_beat=ticks_per_beat)
    for messages in tracks:
        file.tracks.append(mido.MidiTrack(messages))
    buffer = io.BytesIO()
    file.save(file=buffer)
    return buffer.getvalue()


def notes(pitches, length: int = 240) -> list:
    messages = []
    for pitch in pitches:
        messages += [mido.Message("note_on", note=pitch, velocity=80, time=0)]
        messages += [mido.Message("note_off", note=pitch, velocity=0, time=length)]
    return messages


def crafted(name: str, rng: random.Random) -> bytes:
    if name == "empty":
        return b""
    if name == "random_bytes":
        return rng.randbytes(rng.randrange(1, 4096))
    if name == "header_then_random":
        return b"MThd" + rng.randbytes(rng.randrange(0, 4096))
    if name == "type_2":
        return midi_bytes([notes([60, 64, 67]), notes([48])], file_type=2)
    if name == "tempo_1_microsecond":
        return midi_bytes([[mido.MetaMessage("set_tempo", tempo=1)] + notes([60, 62])])
    if name == "tempo_maximum":
        return midi_bytes([[mido.MetaMessage("set_tempo", tempo=0xFFFFFF)] + notes([60, 62])])
    if name == "ten_thousand_tracks":
        return midi_bytes([notes([rng.randrange(21, 109)]) for _ in range(10_000)])
    if name == "twenty_thousand_notes":
        return midi_bytes([notes([rng.randrange(21, 109) for _ in range(20_000)], length=1)])
    if name == "all_off_keyboard":
        return midi_bytes([notes([rng.choice([*range(0, 21), *range(109, 128)]) for _ in range(50)])])
    if name == "resolution_1_far_note":
        return midi_bytes([[mido.Message("note_on", note=60, velocity=80, time=9_000_000)]], ticks_per_beat=1)
    if name == "resolution_1_day_long_note":
        held = [
            mido.Message("note_on", note=60, velocity=80, time=0),
            mido.Message("note_off", note=60, time=9_000_000),
        ]
        return midi_bytes([held], ticks_per_beat=1)
    if name == "over_the_size_limit":
        return midi_bytes([notes([60])]) + bytes(MAX_MIDI_BYTES)
    if name == "maximum_delta_time":
        return midi_bytes([[mido.Message("note_on", note=60, velocity=80, time=0x0FFFFFFF)]])
    if name == "zero_resolution":
        data = bytearray(midi_bytes([notes([60])]))
        data[12:14] = b"\x00\x00"
        return bytes(data)
    if name == "track_length_lies":
        data = bytearray(midi_bytes([notes([60, 62])]))
        data[18:22] = struct.pack(">I", 0x7FFFFFFF)
        return bytes(data)
    raise ValueError(name)


def mutated(seed: bytes, rng: random.Random) -> tuple[str, bytes]:
    data = bytearray(seed)
    kind = rng.choice(("flip", "truncate", "duplicate_chunk"))
    if kind == "flip":
        for _ in range(rng.randrange(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == "truncate":
        del data[rng.randrange(len(data)) :]
    else:
        start = data.find(b"MTrk", rng.randrange(len(data) // 2))
        start = start if start >= 0 else 14
        end = data.find(b"MTrk", start + 4)
        chunk = data[start : end if end > 0 else len(data)]
        data[start:start] = chunk * rng.randrange(1, 4)
    return kind, bytes(data)


def fuzz_cases(seeds: list[bytes], count: int, rng: random.Random):
    """`count` cases: every crafted one once, the rest mutations of the real seed files."""
    for name in CRAFTED[:count]:
        yield name, crafted(name, rng)
    for number in range(max(0, count - len(CRAFTED))):
        kind, data = mutated(rng.choice(seeds), rng)
        yield f"{kind}_{number}", data
