"""Risk: lists."""
