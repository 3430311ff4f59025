"""Risk: decisions."""
