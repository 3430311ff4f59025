"""Risk: baselines."""
