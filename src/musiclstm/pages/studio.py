"""The Streamlit studio: compose with a trained model, then look, listen and download, in the browser.

A thin view over the public API: the sidebar sets GenerationSettings, "Generate" calls `generate`
(or `harmonize`, or `infill` in Mode "Rewrite bars") and `save_pieces`, and the page shows the
piano roll, an audio player, downloads, and the piece's statistics beside the held-out music of the
model's corpus. Started by `musiclstm demo`, which passes the model to open first in MUSICLSTM_MODEL
and the folder to look for more in MUSICLSTM_RUNS. Every user error is shown on the page.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import streamlit as st

from musiclstm import (
    AUTO_KEY,
    BUNDLED_MODEL,
    CHOICES,
    KEY_NAMES,
    MODE_SCALE,
    SCALES,
    STRATEGIES,
    MusicLSTMError,
    draw_seed,
    find_model_folders,
    generate,
    harmonize,
    held_out_statistics,
    infill,
    midi_to_roll,
    music_statistics,
    open_composer,
    save_pieces,
)

MAX_PRIMER_BYTES = 1_000_000  # a long piano MIDI file is a few tens of kB
STATISTICS = {  # label: key of music_statistics
    "notes per step": "note_density",
    "notes per sounding step": "polyphony",
    "empty steps": "empty_step_rate",
    "in the best-fitting key": "in_key_rate",
    "bars repeating an earlier bar": "repeated_window_rate",
}
RHYTHM = {  # label: key of music_statistics' rhythm; the first label names its position unit
    "onsets on each {} of the beat": "onsets_by_position",
    "one-step notes": "one_step_note_rate",
    "mean note length (beats)": "mean_note_beats",
    "notes struck again": "struck_again_rate",
}
VOICES = {  # label: key of music_statistics' voices (texture and voice leading)
    "4-note steps": "four_note_steps",
    "3-note steps": "three_note_steps",
    "count changes per step": "count_changes_per_step",
    "parallel 5ths/8ves per 100 chord changes": "parallels_per_100_changes",
    "top voice moves of 1-2 semitones": "top_steps_share",
    "top voice leaps of 5+ semitones": "top_leaps_share",
    "phrase ends (held chords) per 64 steps": "phrase_ends_per_64_steps",
}


@st.cache_resource(show_spinner="Loading the model...")
def cached_composer(folder: str):
    """The model, loaded once per folder and shared by every click and session."""
    return open_composer(folder)


@st.cache_data(show_spinner=False)
def cached_reference(folder: str) -> dict | None:
    return held_out_statistics(cached_composer(folder))


def model_choices() -> list[str]:
    """The model the demo was started with first, then the run folders found, then the bundled model."""
    started_with = os.environ.get("MUSICLSTM_MODEL")
    roots = [root for root in (started_with, os.environ.get("MUSICLSTM_RUNS", "runs")) if root]
    return [str(folder) for folder in find_model_folders(*roots, BUNDLED_MODEL)]


MODELS_OWN = "the model's"


COMPOSE, HARMONIZE, REWRITE = "Compose", "Harmonize a melody", "Rewrite bars"


def sidebar_settings() -> tuple[dict, object, bool]:
    """The generation settings the sidebar's widgets describe, the uploaded MIDI file (or None), and whether
    it is a melody to harmonize rather than a primer to go on from; in Mode "Rewrite bars" the settings'
    `rewrite_bars` are the bars of the uploaded piece to rewrite (first, last), from 1."""
    bar = st.sidebar
    mode = bar.radio("Mode", [COMPOSE, HARMONIZE, REWRITE], horizontal=True, key="mode")
    strategy = bar.selectbox("Strategy", list(STRATEGIES), index=list(STRATEGIES).index("balanced"), key="strategy")
    preset = STRATEGIES[strategy]
    temperature = bar.slider(
        "Temperature",
        0.1,
        2.0,
        preset.temperature,
        0.05,
        key=f"temperature_{strategy}",
        help="Below 1 plays the likeliest notes, above 1 takes more chances. The strategy sets it first.",
    )
    scales = [MODE_SCALE, *SCALES]
    scale = bar.selectbox(
        "Scale",
        scales,
        index=scales.index(preset.scale or "chromatic"),
        key=f"scale_{strategy}",
        help="Notes outside it are never played; chromatic allows all twelve. mode: the key's own, major, or "
        "minor with its raised 6th and 7th.",
    )
    keys = [AUTO_KEY, *KEY_NAMES, *(f"{name} minor" for name in KEY_NAMES)]
    key = bar.selectbox("Key", keys, disabled=scale == "chromatic", help="auto: the key that fits the primer best")
    bars = bar.slider("Length (bars)", 1, 64, 16, key="bars", disabled=mode == REWRITE)
    chosen = bar.radio(
        "Notes chosen by",
        [MODELS_OWN, *CHOICES],
        horizontal=True,
        key="choose",
        help="threshold: every note above it; sample: a draw; the model's: sample for a NADE head, "
        "threshold for independent outputs",
    )
    choose = None if chosen == MODELS_OWN else chosen
    threshold = bar.slider("Threshold", 0.05, 0.95, 0.5, 0.05, disabled=choose == "sample")
    max_notes = bar.number_input("Most notes per step (0: no cap)", 0, 12, 0)
    tempo = bar.slider("Tempo (beats per minute)", 40, 200, 100)
    fresh = bar.checkbox("New seed on every click", value=True, key="fresh_seed")
    seed = bar.number_input("Seed", 0, 2**31 - 1, 1, disabled=fresh, key="seed")
    rewrite_bars = None
    if mode == REWRITE:
        primer = bar.file_uploader("Piece (MIDI file) whose bars to rewrite", type=["mid", "midi"], key="piece")
        first = bar.number_input("First bar to rewrite (from 1)", 1, 9999, 5, key="first_bar")
        last = bar.number_input("Last bar to rewrite", 1, 9999, 8, key="last_bar")
        rewrite_bars = (int(first), int(last))
        if primer is not None:
            bar.caption(f"Bars {first}-{last} of {primer.name} will be rewritten; the rest stays as it is.")
    elif mode == HARMONIZE:
        primer = bar.file_uploader("Melody (MIDI file; its top line is kept)", type=["mid", "midi"], key="melody")
        if primer is not None:
            bar.caption(f"The voices will go under {primer.name}'s melody (its first bars, as Length says).")
    else:
        primer = bar.file_uploader("Primer (optional MIDI file)", type=["mid", "midi"], key="primer")
        if primer is not None:
            bar.caption(f"The piece will open with {primer.name}.")
    settings = dict(
        strategy=strategy,
        temperature=temperature,
        scale=scale,
        key=key,
        bars=bars,
        choose=choose,
        threshold=threshold,
        max_notes=int(max_notes) or None,
        tempo_bpm=tempo,
        seed=draw_seed() if fresh else int(seed),
        rewrite_bars=rewrite_bars,
    )
    return settings, primer, mode == HARMONIZE


def saved_upload(upload, folder: Path) -> Path | None:
    """An uploaded primer written into `folder` under its own name; refused when over the size limit."""
    if upload is None:
        return None
    if upload.size > MAX_PRIMER_BYTES:
        raise MusicLSTMError(f"{upload.name}: {upload.size:,} bytes, over the {MAX_PRIMER_BYTES:,}-byte limit")
    path = folder / (Path(upload.name).name or "primer.mid")
    path.write_bytes(upload.getvalue())
    return path


def compose(folder: str, settings: dict, primer, is_melody: bool = False) -> dict:
    """Compose one piece (or harmonize the uploaded melody, or rewrite the `rewrite_bars` of the settings in
    the uploaded piece) and read its files back: what the page shows and offers for download."""
    composer = cached_composer(folder)
    options = dict(settings)
    bars = options.pop("bars")
    rewrite_bars = options.pop("rewrite_bars", None)
    if is_melody and primer is None:
        raise MusicLSTMError("Upload a melody (a MIDI file) to harmonize.")
    if rewrite_bars and primer is None:
        raise MusicLSTMError("Upload a piece (a MIDI file) whose bars to rewrite.")
    with tempfile.TemporaryDirectory(prefix="musiclstm-studio-") as scratch:
        uploaded = saved_upload(primer, Path(scratch))
        name = primer.name if primer else None
        metre = midi_to_roll(uploaded, composer.steps_per_beat).grid if uploaded else composer.grid
        steps = bars * metre.steps_per_bar  # bars of the upload's own metre; a held-out primer's are unknown here
        if rewrite_bars:
            composition = infill(uploaded, composer, bars=rewrite_bars, piece_name=name, **options)
        elif is_melody:
            composition = harmonize(uploaded, composer, name, length=steps, **options)
        else:
            composition = generate(composer, uploaded, name, length=steps, **options)
        (piece,) = save_pieces(composition, scratch)
        files = {
            kind: Path(piece["files"][kind]).read_bytes() for kind in ("midi", "wav", "png") if kind in piece["files"]
        }
    start, end = composition.gap or (composition.primer_steps, None)
    judged = composition.pieces[0].steps(start, end)  # its beats where they were in the piece
    return {
        "files": files,
        "is_harmonization": is_melody,
        "rewritten": piece.get("gap"),
        "statistics": music_statistics([judged]),
        "seed": composition.settings["seed"],
        "primer": composition.primer_sources[0],
        "key": piece["key"],
        "synthesizer": piece["files"].get("synthesizer"),
        "no_audio": piece["files"].get("no_audio"),
    }


def show(value) -> str:
    if isinstance(value, list):
        return "/".join(f"{share:.2f}" for share in value)
    return value if isinstance(value, str) else "-" if value is None else f"{value:.2f}"


def show_piece(piece: dict, reference: dict | None) -> None:
    key = f"In {piece['key']}. " if piece["key"] else ""
    shown = (
        f"In red: the melody of {piece['primer']}"
        if piece.get("is_harmonization")
        else f"Shaded: the primer, {piece['primer']}"
    )
    if rewritten := piece.get("rewritten"):
        bars = "bars {}-{}".format(*rewritten["bars"])
        shown = (
            f"Shaded: {bars}, rewritten; the rest is {piece['primer']}'s own. The model's NLL of the "
            f"{rewritten['join_steps']} steps after them: {rewritten['join_nll']:.2f} nats per step"
        )
    st.image(piece["files"]["png"], caption=f"{key}Seed {piece['seed']}. {shown}.")
    if piece["no_audio"]:
        st.caption(f"No audio: the piece is {piece['no_audio']}.")
    else:
        st.audio(piece["files"]["wav"], format="audio/wav")
        if piece["synthesizer"] != "fluidsynth":
            st.caption("FluidSynth is not installed: the audio is pretty_midi's plain synthesizer.")
    midi_column, wav_column = st.columns(2)
    midi_column.download_button("Download MIDI", piece["files"]["midi"], "musiclstm.mid", "audio/midi")
    if not piece["no_audio"]:
        wav_column.download_button("Download WAV", piece["files"]["wav"], "musiclstm.wav", "audio/wav")
    statistics, rhythm, voices = piece["statistics"], piece["statistics"]["rhythm"], piece["statistics"]["voices"]
    rows = [(label, statistics[name], reference and reference[name]) for label, name in STATISTICS.items()]
    rows += [
        (label.format(rhythm["position_unit"]), rhythm[name], reference and reference["rhythm"][name])
        for label, name in RHYTHM.items()
    ]
    rows += [(label, voices[name], reference and reference["voices"][name]) for label, name in VOICES.items()]
    labels, values, held_out = zip(*rows, strict=True)
    st.table(
        {
            "": list(labels),
            "this piece": [show(value) for value in values],
            "held-out music of the model's corpus": [show(value) for value in held_out],
        }
    )


def main() -> None:
    st.set_page_config(page_title="musiclstm studio", layout="wide")
    st.title("musiclstm studio")
    st.caption("Compose polyphonic music with a two-layer LSTM: set the sidebar, press Generate, listen.")
    folders = model_choices()
    if not folders:
        st.error("No trained model found: start with `musiclstm demo --model RUN_FOLDER`, or train one first.")
        return
    folder = st.sidebar.selectbox("Model", folders) if len(folders) > 1 else folders[0]
    try:
        cached_composer(folder)
    except MusicLSTMError as error:
        st.error(f"The model could not be loaded: {error}")
        return
    settings, primer, is_melody = sidebar_settings()
    if st.button("Generate", type="primary"):
        try:
            with st.spinner(
                "Rewriting..." if settings["rewrite_bars"] else "Harmonizing..." if is_melody else "Composing..."
            ):
                st.session_state["piece"] = compose(folder, settings, primer, is_melody)
        except MusicLSTMError as error:
            st.session_state.pop("piece", None)
            st.error(str(error))
    if "piece" in st.session_state:
        show_piece(st.session_state["piece"], cached_reference(folder))


if __name__ == "__main__":  # as `streamlit run` executes it
    main()
