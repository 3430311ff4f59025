"""Risk: alerts."""
