"""Composing: a trained model loaded once, the step loop that draws music, and one builder per job on
top of it (generate, harmonize, infill), and the files a composition is saved as."""
