"""The risk matrix of the seed (R-III.1(3)): likelihood x impact, 1-5 each, gives the level.

The seed's worked examples fix the corners: likelihood high (above 80 %) with a
severe impact (loss above 1,000,000) is high; likelihood medium (40-80 %) with
a general impact (50,000 to 1,000,000) is medium; and its example assessment,
a known unpatched SQL injection (likelihood medium, 3) with a major impact
(5), is rated high. The grid below, read row by likelihood and column by
impact, is that rule written out: a score (likelihood x impact) of 15 or more
is high, 5 to 12 medium, 4 or less low.
"""

from __future__ import annotations

import enum


class Level(enum.StrEnum):
    low = "low"
    medium = "medium"
    high = "high"


L, M, H = Level.low, Level.medium, Level.high

#: MATRIX[likelihood - 1][impact - 1]
MATRIX: tuple[tuple[Level, ...], ...] = (
    #  impact: 1  2  3  4  5
    (L, L, L, L, M),  # likelihood 1 (rare)
    (L, L, M, M, M),  # likelihood 2 (unlikely)
    (L, M, M, M, H),  # likelihood 3 (possible)
    (L, M, M, H, H),  # likelihood 4 (likely)
    (M, M, H, H, H),  # likelihood 5 (almost certain)
)

LIKELIHOOD_LABELS = ("rare", "unlikely", "possible", "likely", "almost certain")
IMPACT_LABELS = ("minor", "moderate", "significant", "severe", "major")


def level_of(likelihood: int, impact: int) -> Level:
    if not (1 <= likelihood <= 5 and 1 <= impact <= 5):
        raise ValueError("likelihood and impact are 1 to 5")
    return MATRIX[likelihood - 1][impact - 1]
