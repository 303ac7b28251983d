"""Judging: score a trained model on held-out music (NLL, frame accuracy) and judge generated music
against real music (statistics, the two-sample test, copies of the training set)."""
