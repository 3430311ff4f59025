"""Risk: labels."""
