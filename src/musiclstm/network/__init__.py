"""The network: how it reads a piece, the LSTM trunk and its output heads, the sampling rules, the
datasets that feed it, training with Lightning, run folders on disk and the bundled-model export."""
