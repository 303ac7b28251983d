"""Data: read a source (a MIDI folder, the music21 chorales, a benchmark file) into a corpus on disk,
split by piece, and load it back memory-mapped. Builds on `music`; nothing here imports torch."""
