"""Training: presets, the run with resume, and its history."""
