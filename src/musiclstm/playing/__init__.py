"""Playing live: the model as a partner who harmonizes or answers a player in time, from a MIDI port or a page."""
