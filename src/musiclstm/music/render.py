"""Turn rolls into things to hear and see: MIDI with light dynamics, WAV audio, and a piano-roll picture.

MIDI: one piano (or `program`) track, held notes merged, the tempo and a 4/4 time signature written,
velocities accented on each bar's first beat and lighter on off-beats. WAV: 44.1 kHz, rendered by
FluidSynth with a General MIDI SoundFont (pretty_midi's bundled TimGM6mb.sf2 unless another is
given); where FluidSynth is not installed, a warning and pretty_midi's own sine-wave synthesizer.
PNG: the roll over time, the primer shaded apart from the continuation (an infill: its gap shaded).
Every file is written atomically.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import pretty_midi

from musiclstm.config import (
    DEFAULT_TEMPO_BPM,
    LOWEST_PITCH,
    MusicLSTMError,
    check_tempo,
)
from musiclstm.files import (
    check_output_file,
    write_atomically,
    write_failure,
)
from musiclstm.music.grid import Grid, as_grid
from musiclstm.music.roll import load_midi, roll_to_midi

log = logging.getLogger(__name__)

SAMPLE_RATE_HZ = 44_100
BASE_VELOCITY = 76
BEAT_ACCENT = 10  # added on every beat
BAR_ACCENT = 20  # added on each bar's first beat instead
DEFAULT_SOUNDFONT = Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
MAX_BAR_LINES = 400  # more would lie under 6 pixels apart in the widest picture, and cost seconds to draw
MAX_AUDIO_SECONDS = 3600  # an hour of FluidSynth's stereo WAV is 635 MB; a longer piece is written as MIDI only


def format_duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{seconds / 60:.1f} min"


def too_long_for_audio(seconds: float) -> str | None:
    """Why a piece of `seconds` gets no WAV, or None when it may have one."""
    if seconds <= MAX_AUDIO_SECONDS:
        return None
    return (
        f"{format_duration(seconds)} long, over the {format_duration(MAX_AUDIO_SECONDS)} limit for audio "
        "(the WAV would take gigabytes); its MIDI file plays in any MIDI player"
    )


def accented_velocity(grid: Grid):
    """A velocity for each note's start step: strong on the bar's first beat, medium on beats, light between."""

    def velocity(step: int) -> int:
        if grid.is_bar_start(step):
            return BASE_VELOCITY + BAR_ACCENT
        return BASE_VELOCITY + BEAT_ACCENT if grid.is_beat_start(step) else BASE_VELOCITY

    return velocity


def write_midi(
    roll: np.ndarray,
    path: str | Path,
    grid: Grid | int,
    tempo_bpm: float = DEFAULT_TEMPO_BPM,
    program: int = 0,
    onsets: np.ndarray | None = None,
) -> Path:
    """Write a roll as a MIDI file with tempo, the grid's time signatures and velocities accented on its
    beats and bars; a key struck again (`onsets`) while it sounds starts a new note.

    `grid` is the roll's Grid (whole-number steps per beat: that grid in 4/4).
    """
    tempo_bpm, grid = check_tempo(tempo_bpm), as_grid(grid)
    midi = roll_to_midi(roll, grid.steps_per_beat, tempo_bpm, program, accented_velocity(grid), onsets, grid)
    write_atomically(Path(path), midi.write)
    return Path(path)


def write_wav_samples(samples: np.ndarray, path: Path, sample_rate_hz: int) -> None:
    """Write mono float samples as 16-bit PCM, scaled to just below full range."""
    peak = float(np.abs(samples).max()) if samples.size else 0.0
    write_pcm(samples / peak * 0.9 if peak > 0 else np.zeros(len(samples)), path, sample_rate_hz)


def write_pcm(samples: np.ndarray, path: Path, sample_rate_hz: int = SAMPLE_RATE_HZ) -> None:
    """Write mono float samples in [-1, 1] (clipped there) as a 16-bit PCM WAV file, atomically."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    from scipy.io import wavfile  # a second to import: paid only where PCM is written

    write_atomically(path, lambda file: wavfile.write(file, sample_rate_hz, pcm))


def render_audio(
    midi_path: str | Path,
    wav_path: str | Path,
    soundfont: str | Path | None = None,
    sample_rate_hz: int = SAMPLE_RATE_HZ,
) -> str:
    """Render a MIDI file to WAV; return which synthesizer made it ('fluidsynth' or 'pretty_midi').

    Raises:
        MusicLSTMError: the MIDI file or the SoundFont is missing or unreadable, the piece is longer than
            MAX_AUDIO_SECONDS, or FluidSynth fails.
    """
    midi_path, wav_path = Path(midi_path), check_output_file(wav_path)
    midi = load_midi(midi_path)  # names a bad file before any synthesizer sees it
    if reason := too_long_for_audio(midi.get_end_time()):
        raise MusicLSTMError(f"{midi_path}: {reason}")
    soundfont = Path(soundfont) if soundfont else DEFAULT_SOUNDFONT
    if not soundfont.is_file():
        raise MusicLSTMError(f"{soundfont}: SoundFont not found (give a .sf2 file with --soundfont)")
    fluidsynth = shutil.which("fluidsynth")
    if fluidsynth is None:
        log.warning(
            "FluidSynth is not installed: rendering %s with pretty_midi's sine-wave synthesizer "
            "(install fluidsynth for piano sound)",
            wav_path.name,
        )
        write_wav_samples(midi.synthesize(fs=sample_rate_hz), wav_path, sample_rate_hz)
        return "pretty_midi"
    try:
        wav_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=wav_path.parent) as scratch:
            render_with_fluidsynth(fluidsynth, midi_path, Path(scratch) / "out.wav", soundfont, sample_rate_hz)
            check_whole_audio(Path(scratch) / "out.wav", midi.get_end_time(), wav_path)
            (Path(scratch) / "out.wav").replace(wav_path)
    except OSError as err:
        raise write_failure(wav_path, err) from err
    return "fluidsynth"


def render_with_fluidsynth(
    fluidsynth: str, midi_path: Path, rendered: Path, soundfont: Path, sample_rate_hz: int
) -> None:
    """Run FluidSynth's file renderer; a failure it reports is named with the end of its message."""
    command = [fluidsynth, "-ni", "-q", "-F", str(rendered), "-r", str(sample_rate_hz), "-g", "0.6"]
    command += [str(soundfont), str(midi_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not rendered.is_file():
        raise MusicLSTMError(f"{midi_path}: FluidSynth failed ({done.stderr.strip()[-300:]})")


def check_whole_audio(rendered: Path, piece_seconds: float, wav_path: Path) -> None:
    """Refuse a WAV shorter than its piece: FluidSynth stops writing, and still exits 0, when the disk fills."""
    try:
        with wave.open(str(rendered), "rb") as audio:
            frames, rate, frame_bytes = (
                audio.getnframes(),
                audio.getframerate(),
                audio.getsampwidth() * audio.getnchannels(),
            )
    except (wave.Error, EOFError) as err:
        raise MusicLSTMError(f"{wav_path}: FluidSynth wrote an unreadable WAV ({err}); is the disk full?") from err
    data_bytes = rendered.stat().st_size - 44  # the canonical header before the samples
    seconds = min(frames, max(data_bytes, 0) // max(frame_bytes, 1)) / rate
    if seconds < piece_seconds - 0.05:
        full = shutil.disk_usage(rendered.parent).free < 1_000_000
        raise MusicLSTMError(
            f"{wav_path}: FluidSynth wrote {seconds:.2f} s of a {piece_seconds:.2f} s piece "
            + ("(the disk is full)" if full else "(is the disk full?)")
            + "; nothing was written under this name"
        )


PICTURE_HEIGHT = 450  # pixels of a piece's picture; its width follows its length, 800 to 2,400
MARGINS = (56, 40, 16, 34)  # left (pitches), top (title, legend), right, bottom (steps): pixels around the roll
INK, PAPER, BAR_LINE = (20, 20, 20), (255, 255, 255), (190, 190, 190)
SHADES = {"primer": (31, 119, 180), "rewritten": (255, 127, 14), "melody": (214, 39, 40)}  # matplotlib's tab colours
SHADE_ALPHA = 0.15


def plot_roll(
    roll: np.ndarray,
    path: str | Path,
    grid: Grid,
    primer_steps: int = 0,
    title: str = "",
    melody: np.ndarray | None = None,
    gap: tuple[int, int] | None = None,
) -> Path:
    """Draw a roll as a PNG: time across, pitch up, bar lines (up to MAX_BAR_LINES), the primer shaded, the
    notes of a harmonized `melody` (a roll of the same shape) in red, and an infill's `gap` (steps [start,
    end)) shaded. Drawn with Pillow, pixel by pixel: matplotlib would cost every command a second to import."""
    from PIL import Image, ImageDraw

    steps = max(len(roll), 1)
    width = int(max(800, min(2400, steps / 24 * 100)))
    left, top, right, bottom = MARGINS
    inner_width, inner_height = width - left - right, PICTURE_HEIGHT - top - bottom
    sounding = np.flatnonzero(roll.any(axis=0))
    low, high = (int(sounding[0]), int(sounding[-1])) if sounding.size else (39, 51)
    columns = np.arange(inner_width) * steps // inner_width  # the step under each pixel column
    rows = (inner_height - 1 - np.arange(inner_height)) * (high - low + 1) // inner_height + low  # origin lower
    pixels = np.full((inner_height, inner_width, 3), PAPER, dtype=np.float64)
    for name, span in (("primer", (0, primer_steps)), ("rewritten", gap or (0, 0))):
        shaded = (columns >= span[0]) & (columns < span[1])
        pixels[:, shaded] = pixels[:, shaded] * (1 - SHADE_ALPHA) + np.array(SHADES[name]) * SHADE_ALPHA
    bars = grid.bar_starts(len(roll))
    if len(bars) <= MAX_BAR_LINES:
        pixels[:, np.unique(np.minimum(bars * inner_width // steps, inner_width - 1))] = BAR_LINE
    if len(roll):
        pixels[roll[columns][:, rows].T] = INK
        if melody is not None:
            pixels[melody[columns][:, rows].T] = SHADES["melody"]
    picture = Image.new("RGB", (width, PICTURE_HEIGHT), PAPER)
    picture.paste(Image.fromarray(pixels.astype(np.uint8)), (left, top))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((left - 1, top - 1, left + inner_width, top + inner_height), outline=INK)
    draw.text((4, 6), "MIDI pitch", fill=INK)
    draw.text((left + inner_width // 2 - 3 * len(title), 6), title, fill=INK)
    draw.text((left + inner_width // 2 - 40, PICTURE_HEIGHT - 16), f"step ({grid.steps_per_beat} per beat)", fill=INK)
    for pitch in range(LOWEST_PITCH + low, LOWEST_PITCH + high + 1):
        if pitch % 12 == 0:  # each C, by its MIDI number
            y = top + inner_height - (pitch - LOWEST_PITCH - low + 0.5) * inner_height / (high - low + 1)
            draw.text((left - 28, y - 6), str(pitch), fill=INK)
    labelled = bars[:: max(1, -(-len(bars) // 10))]  # at most 10 bar lines numbered by their step
    for step in labelled[labelled < len(roll)]:
        draw.text((left + int(step) * inner_width // steps - 4, top + inner_height + 4), str(step), fill=INK)
    shown = [name for name, on in (("primer", primer_steps), ("rewritten", gap), ("melody", melody is not None)) if on]
    for number, name in enumerate(shown):
        x = left + inner_width - 100 * (len(shown) - number)
        draw.rectangle((x, 22, x + 12, 32), fill=SHADES[name])
        draw.text((x + 16, 21), name, fill=INK)
    write_atomically(Path(path), lambda file: picture.save(file, format="PNG"))
    return Path(path)


def draw_roll(
    axis,
    roll: np.ndarray,
    grid: Grid,
    primer_steps: int = 0,
    title: str = "",
    melody: np.ndarray | None = None,
    gap: tuple[int, int] | None = None,
) -> None:
    """Draw a roll on a matplotlib axis, as `plot_roll` draws it alone: for figures of several rolls side by side
    (the benchmarks' pictures)."""
    from matplotlib.colors import ListedColormap

    steps = len(roll)
    sounding = np.flatnonzero(roll.any(axis=0))
    low, high = (sounding[0], sounding[-1]) if sounding.size else (39, 51)
    extent = (0, steps, LOWEST_PITCH + low - 0.5, LOWEST_PITCH + high + 0.5)
    axis.imshow(
        roll[:, low : high + 1].T, aspect="auto", origin="lower", cmap="Greys", interpolation="nearest", extent=extent
    )
    if melody is not None:
        line = melody[:, low : high + 1].T
        red = ListedColormap(["tab:red"])
        axis.imshow(
            np.ma.masked_where(~line, line),
            aspect="auto",
            origin="lower",
            cmap=red,
            interpolation="nearest",
            extent=extent,
        )
        axis.plot([], [], color="tab:red", linewidth=4, label="melody")
    if primer_steps:
        axis.axvspan(0, primer_steps, color="tab:blue", alpha=0.15, label="primer")
        axis.axvline(primer_steps, color="tab:blue", linewidth=1.5)
    if gap is not None:
        axis.axvspan(*gap, color="tab:orange", alpha=0.15, label="rewritten")
        axis.vlines(gap, 0, 1, transform=axis.get_xaxis_transform(), color="tab:orange", linewidth=1.5)
    if melody is not None or primer_steps or gap is not None:
        axis.legend(loc="lower right", bbox_to_anchor=(1, 1), ncol=2, frameon=False)
    bars = grid.bar_starts(steps)
    if len(bars) <= MAX_BAR_LINES:
        axis.vlines(bars, 0, 1, transform=axis.get_xaxis_transform(), color="tab:gray", linewidth=0.4, alpha=0.5)
    axis.set(xlabel=f"step ({grid.steps_per_beat} per beat)", ylabel="MIDI pitch", title=title)
