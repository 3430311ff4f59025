"""The alerts summary per analyst the incidents KPI page reads (internal, scope `risk:read`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from services.risk.models import Alert
from tests.risk.conftest import Risk, new_id

START = datetime(2019, 3, 1, tzinfo=UTC)  # a period no other test writes alerts into
END = START + timedelta(days=7)


def _alert(created_at: datetime, **fields: Any) -> Alert:
    values: dict[str, Any] = {"category": "transaction", "grade": 3, "score": 75.0, "summary": "test"}
    values.update(fields)
    return Alert(created_at=created_at, **values)


async def test_alerts_per_analyst_with_their_outcomes_over_a_period(risk: Risk) -> None:
    ana, bob = f"ana-{new_id()}", f"bob-{new_id()}"
    inside = START + timedelta(days=1)
    async with risk.sessionmaker() as session, session.begin():
        session.add_all(
            [
                _alert(inside, assignee=ana, status="assigned"),
                _alert(inside, assignee=ana, status="resolved", resolution="fraud", resolved_by=ana),
                _alert(inside, assignee=ana, status="resolved", resolution="genuine", resolved_by=ana),
                _alert(inside, assignee=ana, status="resolved", resolution="fraud", resolved_by=ana),
                # resolved without being assigned: counted for whoever resolved it
                _alert(inside, status="resolved", resolution="no_action", resolved_by=bob),
                _alert(START, status="open"),  # `from` is inclusive
                _alert(END, assignee=ana, status="assigned"),  # `to` is exclusive
                _alert(START - timedelta(seconds=1), assignee=bob, status="assigned"),
            ]
        )
    params = {"from": START.isoformat(), "to": END.isoformat()}
    response = await risk.client.get("/internal/alerts/summary", params=params, headers=risk.service("incidents"))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "analysts": [
            {"analyst": ana, "alerts": 4, "open": 1, "resolved": 3, "outcomes": {"fraud": 2, "genuine": 1}},
            {"analyst": bob, "alerts": 1, "open": 0, "resolved": 1, "outcomes": {"no_action": 1}},
            {"analyst": None, "alerts": 1, "open": 1, "resolved": 0, "outcomes": {}},
        ]
    }
    empty = {"from": "2018-01-01T00:00:00Z", "to": "2018-02-01T00:00:00Z"}
    nothing = await risk.client.get("/internal/alerts/summary", params=empty, headers=risk.service("incidents"))
    assert nothing.json() == {"analysts": []}


async def test_a_backwards_empty_or_naive_period_is_refused(risk: Risk) -> None:
    headers = risk.service("incidents")
    for params in (
        {"from": END.isoformat(), "to": START.isoformat()},
        {"from": START.isoformat(), "to": START.isoformat()},
        {"from": "2019-03-01T00:00:00", "to": "2019-03-08T00:00:00"},
    ):
        response = await risk.client.get("/internal/alerts/summary", params=params, headers=headers)
        assert response.status_code == 400, params
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "invalid_period"
    missing = await risk.client.get("/internal/alerts/summary", params={"from": START.isoformat()}, headers=headers)
    assert missing.status_code == 422


async def test_only_a_service_with_risk_read_gets_the_summary(risk: Risk) -> None:
    params = {"from": START.isoformat(), "to": END.isoformat()}
    wrong_scope = risk.service("incidents", scope="risk:score")
    assert (await risk.client.get("/internal/alerts/summary", params=params, headers=wrong_scope)).status_code == 403
    staff = risk.staff()
    assert (await risk.client.get("/internal/alerts/summary", params=params, headers=staff)).status_code == 403
    assert (await risk.client.get("/internal/alerts/summary", params=params)).status_code == 401
