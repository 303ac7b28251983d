"""musiclstm: learn polyphonic music from MIDI piano rolls with a two-layer LSTM and compose new pieces.

The public API, which the command line and the demo page call:
    build_corpus(CorpusConfig(source="bach"), "data/bach")   # a source -> a corpus folder
    load_corpus("data/bach")                                 # the corpus's pieces, rolls memory-mapped
    WindowDataset(corpus, "train")                           # (64, 88) windows -> next frame
    composer = open_composer("runs/bach")                    # a trained model, loaded once
    generate(composer, length=256, key="F#", scale="minor")  # -> Composition: rolls (pieces, steps, 88)
    save_pieces(composition, "out")                          # MIDI, WAV, PNG and JSON per piece
"""

import importlib

from musiclstm.config import (
    AUTO_KEY,
    BEATS_PER_BAR,
    BUNDLED_MODEL,
    CHOICES,
    KEY_NAMES,
    SCALES,
    STRATEGIES,
    CorpusConfig,
    MusicLSTMError,
    bundled_model,
)
from musiclstm.config import VERSION as __version__
from musiclstm.corpus import Corpus, Piece, build_corpus, load_corpus
from musiclstm.metrics import music_statistics
from musiclstm.roll import midi_to_roll, roll_to_midi

# Names that need torch, imported only when asked for, so the corpus tools start quickly.
LAZY = {
    "WindowDataset": "musiclstm.dataset",
    "Composer": "musiclstm.generation",
    "Composition": "musiclstm.generation",
    "GenerationSettings": "musiclstm.generation",
    "generate": "musiclstm.generation",
    "held_out_statistics": "musiclstm.generation",
    "open_composer": "musiclstm.generation",
    "find_model_folders": "musiclstm.model",
    "save_pieces": "musiclstm.render",
    "export_model": "musiclstm.bundle",
}

__all__ = [
    "AUTO_KEY",
    "BEATS_PER_BAR",
    "BUNDLED_MODEL",
    "CHOICES",
    "KEY_NAMES",
    "SCALES",
    "STRATEGIES",
    "Corpus",
    "CorpusConfig",
    "MusicLSTMError",
    "Piece",
    "__version__",
    "build_corpus",
    "bundled_model",
    "load_corpus",
    "midi_to_roll",
    "music_statistics",
    "roll_to_midi",
    *LAZY,
]


def __getattr__(name: str):
    if name in LAZY:
        return getattr(importlib.import_module(LAZY[name]), name)
    raise AttributeError(f"module 'musiclstm' has no attribute {name!r}")
