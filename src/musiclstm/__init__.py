"""musiclstm: learn polyphonic music from MIDI piano rolls with a two-layer LSTM and compose new pieces.

The public API, which the command line and the demo page call:
    build_corpus(CorpusConfig(source="bach"), "data/bach")   # a source -> a corpus folder
    load_corpus("data/bach")                                 # the corpus's pieces, rolls memory-mapped
    WindowDataset(corpus, "train")                           # (64, 88) windows -> next frame
"""

from musiclstm.config import VERSION as __version__
from musiclstm.config import CorpusConfig, MusicLSTMError
from musiclstm.corpus import Corpus, Piece, build_corpus, load_corpus
from musiclstm.roll import midi_to_roll, roll_to_midi

__all__ = [
    "Corpus",
    "CorpusConfig",
    "MusicLSTMError",
    "Piece",
    "WindowDataset",
    "__version__",
    "build_corpus",
    "load_corpus",
    "midi_to_roll",
    "roll_to_midi",
]


def __getattr__(name: str):
    """Import torch only when the dataset is asked for, so the corpus tools start quickly."""
    if name == "WindowDataset":
        from musiclstm.dataset import WindowDataset

        return WindowDataset
    raise AttributeError(f"module 'musiclstm' has no attribute {name!r}")
