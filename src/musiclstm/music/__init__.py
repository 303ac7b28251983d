"""Music in and out: the beat grid and piano rolls, MIDI files, sheet music, audio and pictures, and the
numbers that describe a piece. Nothing here imports torch or knows about corpora or models."""
