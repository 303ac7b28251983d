"""Shared test helpers: MIDI files written tick by tick with mido, a small real Bach corpus, a silent study, a page
in headless Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import mido
import numpy as np
import pytest
from chromium import localhost_page

from musiclstm import CorpusConfig, build_corpus, load_corpus

TICKS_PER_BEAT = 480


def write_midi(
    path: Path,
    notes: list[tuple[int, int, int]],
    channel: int = 0,
    tempo_changes: tuple[tuple[int, int], ...] = ((0, 120),),
    extra_tracks: int = 0,
    ticks_per_beat: int = TICKS_PER_BEAT,
) -> Path:
    """Write a type-1 MIDI file of (pitch, start_tick, end_tick) notes on one channel.

    `tempo_changes` are (tick, bpm) pairs in a conductor track; `extra_tracks` adds copies of the
    note track on channels 1, 2, ... (so instruments can be merged).
    """
    file = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    conductor = mido.MidiTrack()
    last = 0
    for tick, bpm in tempo_changes:
        conductor.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=tick - last))
        last = tick
    file.tracks.append(conductor)
    for index in range(1 + extra_tracks):
        file.tracks.append(note_track(notes, channel + index))
    path.parent.mkdir(parents=True, exist_ok=True)
    file.save(path)
    return path


def note_track(notes: list[tuple[int, int, int]], channel: int) -> mido.MidiTrack:
    events = sorted([(start, 1, pitch) for pitch, start, _ in notes] + [(end, 0, pitch) for pitch, _, end in notes])
    track, last = mido.MidiTrack(), 0
    for tick, is_on, pitch in events:
        kind = "note_on" if is_on else "note_off"
        track.append(mido.Message(kind, note=pitch, velocity=80 if is_on else 0, channel=channel, time=tick - last))
        last = tick
    return track


@pytest.fixture(scope="session")
def bach_corpus(tmp_path_factory):
    """Twelve real chorales from music21's corpus, read once for the whole session."""
    out = tmp_path_factory.mktemp("bach")
    build_corpus(CorpusConfig("bach", limit=12, workers=2), out)
    return load_corpus(out)


@pytest.fixture(scope="session")
def trained_runs(bach_corpus, tmp_path_factory):
    """Small models trained briefly on real chorales, one per objective: {"last": run, "all": run}."""
    from musiclstm import MODEL_PRESETS, TrainConfig, train

    runs = {}
    for objective in ("last", "all"):
        run = tmp_path_factory.mktemp(f"run_{objective}")
        train(bach_corpus.path, run, MODEL_PRESETS["small"], TrainConfig(objective=objective, epochs=2, chunk=32))
        runs[objective] = run
    return runs


@pytest.fixture
def silent_study(tmp_path):
    """A study folder without a model: four silent clips, g1 and g2 generated, r1 and r2 real (Bach)."""
    from musiclstm import RatingsStore, open_study
    from musiclstm.music.render import write_pcm

    sources = {"g1": "generated", "g2": "generated", "r1": "real", "r2": "real"}
    folder = tmp_path / "study"
    (folder / "clips").mkdir(parents=True)
    for clip in sources:
        write_pcm(np.zeros(100), folder / "clips" / f"{clip}.wav")
    settings = {"clips": sorted(sources), "real_name": "Bach", "bars": 1, "questions": []}
    (folder / "study.json").write_text(json.dumps(settings))
    key = {clip: {"source": source, "origin": f"origin of {clip}"} for clip, source in sources.items()}
    (folder / "manifest.json").write_text(json.dumps({"clips": key}))
    RatingsStore.create(folder / "ratings.sqlite", list(sources))
    return open_study(folder)


@pytest.fixture
def browser_page(tmp_path, request):
    """A page in headless Chromium with an empty profile; yields (page, requests refused for leaving localhost)."""
    with localhost_page(tmp_path / "profile", f"{request.node.name}-at-the-end.png") as found:
        yield found
