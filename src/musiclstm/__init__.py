"""musiclstm: learn polyphonic music from MIDI piano rolls with a two-layer LSTM and compose new pieces.

The public API, which the command line and the studio call (and nothing else of theirs):
    build_corpus(CorpusConfig(source="bach"), "data/bach")      # a source -> a corpus folder
    load_corpus("data/bach")                                    # the corpus's pieces, rolls memory-mapped
    train("data/bach", "runs/bach", ModelConfig(), TrainConfig())  # -> a run folder; resume=True continues one
    evaluate("data/bach", "runs/bach")                          # -> a report beside two baselines
    prepare_study("study", "runs/bach")                         # a blind listening test: clips + answer key
    study_report(open_study("study"))                           # its ratings, with 95% intervals
    composer = open_composer("runs/bach")                       # a trained model, loaded once (None: bundled)
    generate(composer, length=256, key="F#", scale="minor")     # -> Composition: rolls (pieces, steps, 88)
    save_pieces(composition, "out")                             # MIDI, WAV, PNG and JSON per piece
    harmonize("melody.mid", "runs/bach", num_outputs=4)         # -> Composition: the melody on top, voices below
    infill("piece.mid", "runs/bach", bars="5-8")                # -> Composition: bars 5-8 rewritten, the rest kept
    play_live("runs/bach", LiveConfig(mode="answer"))           # play along with a MIDI keyboard, live
Every name but the settings is imported when first asked for, so `import musiclstm` is quick, each
command pays only for what it uses, and `export` never loads Lightning.
"""

import importlib

from musiclstm.config import (
    AUTO_KEY,
    BEATS_PER_BAR,
    BUNDLED_MODEL,
    CHOICES,
    CONTEXTS,
    HARMONIZE_LOOKAHEAD,
    INFILL_JOIN_STEPS,
    INFILL_PARTICLES,
    KEY_NAMES,
    LISTENING_PAGE,
    LIVE_MODES,
    MODE_SCALE,
    MODEL_PRESETS,
    SCALES,
    SCORE_KINDS,
    SPLITS,
    STRATEGIES,
    STUDIO_PAGE,
    CorpusConfig,
    EvaluateConfig,
    ExportConfig,
    GenerationSettings,
    LiveConfig,
    ModelConfig,
    MusicLSTMError,
    OutputConfig,
    ServingConfig,
    StudyConfig,
    TrainConfig,
    add_flags,
    bundled_model,
    draw_seed,
    flag_name,
    given_settings,
    settings_from_flags,
)
from musiclstm.config import VERSION as __version__
from musiclstm.files import check_output_file, check_output_folder, write_json_atomically

LAZY = {  # name: its module; each is imported when first asked for, so a command pays only for what it uses
    "Corpus": "musiclstm.data.corpus",
    "StoredPiece": "musiclstm.data.corpus",
    "build_corpus": "musiclstm.data.corpus",
    "format_summary": "musiclstm.data.corpus",
    "load_corpus": "musiclstm.data.corpus",
    "GUESSES": "musiclstm.listening.ratings",
    "QUESTIONS": "musiclstm.listening.ratings",
    "DamagedStoreError": "musiclstm.listening.ratings",
    "RatingsStore": "musiclstm.listening.ratings",
    "Grid": "musiclstm.music.grid",
    "music_statistics": "musiclstm.music.metrics",
    "voice_statistics": "musiclstm.music.voices",
    "Piece": "musiclstm.music.piece",
    "Reading": "musiclstm.music.piece",
    "midi_to_roll": "musiclstm.music.roll",
    "roll_to_midi": "musiclstm.music.roll",
    "piece_to_midi": "musiclstm.music.roll",
    "check_port_free": "musiclstm.serving",
    "serve_page": "musiclstm.serving",
    "WindowDataset": "musiclstm.network.dataset",
    "Composer": "musiclstm.composing.composer",
    "Composition": "musiclstm.composing.composer",
    "generate": "musiclstm.composing.generation",
    "held_out_statistics": "musiclstm.composing.generation",
    "harmonize": "musiclstm.composing.harmonization",
    "infill": "musiclstm.composing.infilling",
    "open_composer": "musiclstm.composing.composer",
    "MusicLSTM": "musiclstm.network.model",
    "keras_parameter_count": "musiclstm.network.model",
    "summary_rows": "musiclstm.network.model",
    "format_network": "musiclstm.network.model",
    "format_training": "musiclstm.network.training",
    "format_pieces": "musiclstm.composing.saving",
    "find_model_folders": "musiclstm.network.run",
    "load_model": "musiclstm.network.run",
    "model_folder": "musiclstm.network.run",
    "read_run_config": "musiclstm.network.run",
    "train": "musiclstm.network.training",
    "evaluate": "musiclstm.judging.evaluation",
    "format_report": "musiclstm.judging.evaluation",
    "render_audio": "musiclstm.music.render",
    "save_pieces": "musiclstm.composing.saving",
    "check_pieces_folder": "musiclstm.composing.saving",
    "check_score_kind": "musiclstm.music.score",
    "write_score": "musiclstm.music.score",
    "export_model": "musiclstm.network.bundle",
    "Study": "musiclstm.listening.study",
    "open_study": "musiclstm.listening.study",
    "prepare_study": "musiclstm.listening.study",
    "study_report": "musiclstm.listening.report",
    "save_study_report": "musiclstm.listening.report",
    "format_study_report": "musiclstm.listening.report",
    "write_ratings_csv": "musiclstm.listening.report",
    "plot_ratings": "musiclstm.listening.report",
    "Partner": "musiclstm.playing.partner",
    "open_partner": "musiclstm.playing.partner",
    "Clock": "musiclstm.playing.ports",
    "FilePlayer": "musiclstm.playing.ports",
    "Recorder": "musiclstm.playing.ports",
    "list_ports": "musiclstm.playing.ports",
    "perform": "musiclstm.playing.session",
    "play_live": "musiclstm.playing.live",
    "format_performance": "musiclstm.playing.live",
    "live_app": "musiclstm.playing.web",
    "serve_live_page": "musiclstm.playing.web",
}

__all__ = [
    "AUTO_KEY",
    "BEATS_PER_BAR",
    "BUNDLED_MODEL",
    "CHOICES",
    "CONTEXTS",
    "HARMONIZE_LOOKAHEAD",
    "INFILL_JOIN_STEPS",
    "INFILL_PARTICLES",
    "KEY_NAMES",
    "LISTENING_PAGE",
    "LIVE_MODES",
    "MODE_SCALE",
    "MODEL_PRESETS",
    "SCALES",
    "SCORE_KINDS",
    "SPLITS",
    "STRATEGIES",
    "STUDIO_PAGE",
    "CorpusConfig",
    "EvaluateConfig",
    "ExportConfig",
    "GenerationSettings",
    "LiveConfig",
    "ModelConfig",
    "MusicLSTMError",
    "OutputConfig",
    "ServingConfig",
    "StudyConfig",
    "TrainConfig",
    "__version__",
    "bundled_model",
    "draw_seed",
    "check_output_file",
    "check_output_folder",
    "flag_name",
    "add_flags",
    "given_settings",
    "settings_from_flags",
    "write_json_atomically",
    *LAZY,
]


def __getattr__(name: str):
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'musiclstm' has no attribute {name!r}")
