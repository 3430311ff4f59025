"""Risk: rules."""
