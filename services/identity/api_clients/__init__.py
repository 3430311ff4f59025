"""API clients of systems outside the suite (the bank's core system)."""
