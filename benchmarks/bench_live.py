"""Benchmark playing live: how long the player waits for the model's notes, over a 64-bar performance.

The player is the shipped example melody (8 bars at 120 bpm), replayed through `musiclstm.play_live`'s
loop on the wall clock as a MIDI input would arrive:
- harmonize: the melody 8 times over (64 bars); `press_ms` is from a key's note_on arriving to the
  model's voices sent, `step_ms` from a step's time to its notes sent (the voices drawn again under a
  held key);
- answer: 16 calls of one bar of the melody, each followed by three bars of rest (the model answers
  after 2 beats, for 2 bars); `answer_ms` is from the end of the wait to the answer's first notes sent.
At batch 1 (one performance), p50, p99 and max in ms, for each model given (a NADE head and an
independent one), and harmonize with a delay (its particles drawn side by side). `--speed 2` replays
twice as fast, the step clock with it, to halve the time the benchmark takes: a step is then 62.5 ms,
still far above what a step costs, so the figures are those of real time.

    .venv/bin/python benchmarks/bench_live.py --model nade=src/musiclstm/models/bach \\
        --model independent=runs/live-independent --speed 2

Prints a Markdown table; asserts nothing; run it alone (two cores).
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

import pretty_midi

from musiclstm.config import KEY_NAMES, LiveConfig, scale_pitch_classes
from musiclstm.music.metrics import best_key, pitch_class_counts
from musiclstm.network.bundle import cpu_name
from musiclstm.playing.live import play_live

EXAMPLE = Path(__file__).parents[1] / "src/musiclstm/examples/melody.mid"
TEMPO = 120.0
BAR_SECONDS = 4 * 60 / TEMPO


def example_notes() -> list[pretty_midi.Note]:
    """The example melody's notes from its first, at TEMPO (the file's own)."""
    notes = sorted(pretty_midi.PrettyMIDI(str(EXAMPLE)).instruments[0].notes, key=lambda note: note.start)
    first = notes[0].start
    return [pretty_midi.Note(note.velocity, note.pitch, note.start - first, note.end - first) for note in notes]


def write_performance(path: Path, notes: list[tuple[float, float, int]]) -> Path:
    midi = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    piano = pretty_midi.Instrument(0)
    piano.notes = [pretty_midi.Note(90, pitch, start, end) for start, end, pitch in notes]
    midi.instruments.append(piano)
    midi.write(str(path))
    return path


def harmonize_performance(folder: Path) -> Path:
    """The example melody 8 times over: 64 bars."""
    melody = example_notes()
    length = 8 * BAR_SECONDS
    notes = [(copy * length + n.start, copy * length + n.end, n.pitch) for copy in range(8) for n in melody]
    return write_performance(folder / "harmonize.mid", notes)


def answer_performance(folder: Path) -> Path:
    """16 calls: bar k of the example melody (k = 1..8, twice), then three bars of rest; 64 bars."""
    melody = example_notes()
    notes = []
    for call in range(16):
        bar = call % 8
        for note in melody:
            if bar * BAR_SECONDS <= note.start < (bar + 1) * BAR_SECONDS:
                shift = call * 4 * BAR_SECONDS - bar * BAR_SECONDS
                notes.append((note.start + shift, min(note.end, (bar + 1) * BAR_SECONDS) + shift, note.pitch))
    return write_performance(folder / "answer.mid", notes)


def in_key_share(recording: Path) -> float:
    """The share of the model's note-steps in the major or minor scale of the key that best fits the player's part."""
    tracks = pretty_midi.PrettyMIDI(str(recording)).instruments
    player, model = (track.get_piano_roll(fs=8)[21:109].T > 0 for track in tracks[:2])
    key = best_key(player)
    root, mode = KEY_NAMES.index(key.split()[0]), key.split()[1]
    allowed = scale_pitch_classes(KEY_NAMES[root], "major" if mode == "major" else "minor_raised")
    counts = pitch_class_counts(model)
    return float(counts[sorted(allowed)].sum() / max(counts.sum(), 1))


def row(name: str, mode: str, report: dict) -> str:
    def cell(measure: str) -> str:
        latency = report[measure]
        if not latency["count"]:
            return "-"
        return f"{latency['p50']:.1f} / {latency['p99']:.1f} / {latency['max']:.1f} ({latency['count']})"

    return (
        f"| {name} | {mode} | {cell('press_ms')} | {cell('step_ms')} | {cell('answer_ms')} | {report['late_steps']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--model", action="append", required=True, help="NAME=FOLDER, once per model")
    parser.add_argument("--speed", type=float, default=1.0, help="replay this many times faster (default 1)")
    parser.add_argument("--delay", type=int, default=2, help="the delay of the harmonize-with-delay row (default 2)")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; speed {args.speed:g}; tempo {TEMPO:g} bpm; batch 1")
    print(
        "| model | mode | press -> notes, ms p50 / p99 / max (n) | step -> notes | wait's end -> answer "
        "| late steps | the model's notes in the player's key |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as folder:
        harmonizing, answering = harmonize_performance(Path(folder)), answer_performance(Path(folder))
        for named in args.model:
            name, _, model = named.partition("=")
            runs = [
                ("harmonize", LiveConfig(play=str(harmonizing), speed=args.speed)),
                (
                    f"harmonize, delay {args.delay}",
                    LiveConfig(play=str(harmonizing), speed=args.speed, delay=args.delay),
                ),
                ("answer", LiveConfig(mode="answer", play=str(answering), speed=args.speed)),
            ]
            for mode, live in runs:
                live = replace(live, record=str(Path(folder) / "performance.mid"))
                report = play_live(model, live, seed=1, tempo_bpm=TEMPO)
                print(row(name, mode, report) + f" {in_key_share(Path(live.record)):.1%} |", flush=True)


if __name__ == "__main__":
    main()
