"""Risk: scoring."""
