"""Risk: history."""
