"""The alert queue: classified and graded, assign, comment, resolve with a label."""

from __future__ import annotations

from sqlalchemy import select

from services.risk.models import ScoredTransaction
from tests.risk.conftest import Risk, new_id


async def test_an_analyst_works_an_alert_to_a_label(risk: Risk) -> None:
    customer = new_id()
    body = await risk.score(customer_id=customer, kind="crypto_withdrawal", amount_minor=6_000_000)
    queue = (await risk.client.get("/staff/alerts", params={"status": "open"}, headers=risk.staff())).json()
    alert = next(a for a in queue["alerts"] if a["transaction_id"] == body["transaction_id"])
    assert alert["category"] in {"behaviour", "transaction", "account"}
    assert alert["grade"] == 3  # a score of 70-80
    analyst = new_id()
    assigned = await risk.client.post(f"/staff/alerts/{alert['id']}/assignment", json={}, headers=risk.staff(analyst))
    assert assigned.json()["assignee"] == analyst
    assert assigned.json()["status"] == "assigned"
    await risk.client.post(
        f"/staff/alerts/{alert['id']}/comments", json={"body": "customer confirms"}, headers=risk.staff(analyst)
    )
    resolved = await risk.client.post(
        f"/staff/alerts/{alert['id']}/resolution",
        json={"label": "genuine", "comment": "own wallet"},
        headers=risk.staff(analyst),
    )
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["status"] == "resolved"
    assert [c["body"] for c in resolved.json()["comments"]][-2:] == ["customer confirms", "own wallet"]
    async with risk.sessionmaker() as session:
        row = await session.scalar(
            select(ScoredTransaction).where(ScoredTransaction.transaction_id == body["transaction_id"])
        )
    assert row is not None
    assert row.label == "genuine"
    again = await risk.client.post(
        f"/staff/alerts/{alert['id']}/resolution", json={"label": "fraud"}, headers=risk.staff(analyst)
    )
    assert again.status_code == 409
