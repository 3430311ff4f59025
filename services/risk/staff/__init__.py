"""Risk: staff."""
