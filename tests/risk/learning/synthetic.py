"""Small generated histories for the learning tests (never the real data set).

A stream of card payments where fraud is learnable the way it is in the handbook's
simulator: amounts far above the customer's usual ones, and payees (terminals) that are
compromised for a while, every payment to them fraudulent, labels known seven days later.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from services.risk.learning.features import HistoryEvent

START = datetime(2026, 1, 1, tzinfo=UTC)
LABEL_DELAY = timedelta(days=7)


def stream(*, days: int = 60, customers: int = 60, payees: int = 40, seed: int = 1) -> list[HistoryEvent]:
    rng = random.Random(seed)
    usual = {f"c{i}": rng.uniform(10, 80) for i in range(customers)}
    compromised: dict[str, tuple[datetime, datetime]] = {}
    for day in range(0, days, 10):
        payee = f"p{rng.randrange(payees)}"
        begin = START + timedelta(days=day)
        compromised[payee] = (begin, begin + timedelta(days=21))
    events: list[HistoryEvent] = []
    for day in range(days):
        for customer, mean in usual.items():
            for _ in range(rng.choice((0, 1, 1, 2))):
                at = START + timedelta(days=day, seconds=rng.randrange(86_400))
                payee = f"p{rng.randrange(payees)}"
                amount = max(1.0, rng.gauss(mean, mean / 4))
                fraud = False
                window = compromised.get(payee)
                if window is not None and window[0] <= at < window[1]:
                    fraud = True
                elif rng.random() < 0.02:
                    amount *= 6
                    fraud = True
                events.append(
                    HistoryEvent(
                        transaction_id=f"t{len(events)}",
                        customer_id=customer,
                        payee=payee,
                        amount_minor=round(amount * 100),
                        occurred_at=at,
                        kind="card_payment",
                        channel="pos",
                        device_id=None,
                        region=None,
                        label="fraud" if fraud else "genuine",
                        labelled_at=at + LABEL_DELAY,
                    )
                )
    events.sort(key=lambda e: e.occurred_at)
    return events
