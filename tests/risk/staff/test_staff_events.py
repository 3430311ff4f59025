"""Staff behaviour (M2.2): abnormal reads or odd-hour approvals suspend high-risk permissions, once a day."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.risk.conftest import Risk


async def post(risk: Risk, staff: str, kind: str, count: int, when: datetime) -> dict[str, object]:
    response = await risk.client.post(
        "/internal/staff-events",
        json={"staff_id": staff, "kind": kind, "count": count, "occurred_at": when.isoformat(), "detail": {}},
        headers=risk.service("vault", scope="risk:signals"),
    )
    assert response.status_code == 202, response.text
    body: dict[str, object] = response.json()
    return body


async def test_a_burst_of_personal_data_reads_asks_permissions_to_suspend_once(risk: Risk) -> None:
    staff = str(uuid.uuid4())
    t = datetime(2026, 7, 1, 3, 0, tzinfo=UTC)  # 11:00 in Beijing
    assert (await post(risk, staff, "personal_data_read", 50, t))["abnormal"] is False
    burst = await post(risk, staff, "personal_data_read", 180, t + timedelta(minutes=20))
    assert burst["suspension_requested"] is True
    again = await post(risk, staff, "personal_data_read", 100, t + timedelta(minutes=30))
    assert again["abnormal"] is True
    assert again["suspension_requested"] is False
    rows = await risk.outbox_rows(f"risk-suspend:{staff}:%")
    assert len(rows) == 1
    assert rows[0]["path"] == f"/v1/permissions/internal/subjects/{staff}/suspension"
    reports = await risk.outbox_rows(f"risk-staff-report:{staff}:%")
    assert reports[0]["payload"]["type"] == "insider_misuse"


async def test_approvals_at_odd_hours_count_but_office_hours_do_not(risk: Risk) -> None:
    staff = str(uuid.uuid4())
    office = datetime(2026, 7, 1, 2, 0, tzinfo=UTC)  # 10:00 in Beijing
    for i in range(5):
        assert (await post(risk, staff, "approval", 1, office + timedelta(minutes=i)))["abnormal"] is False
    night = datetime(2026, 7, 1, 18, 0, tzinfo=UTC)  # 02:00 in Beijing
    results = [await post(risk, staff, "approval", 1, night + timedelta(minutes=i)) for i in range(3)]
    assert [r["abnormal"] for r in results] == [False, False, True]


async def test_staff_events_need_the_signals_scope(risk: Risk) -> None:
    response = await risk.client.post(
        "/internal/staff-events",
        json={
            "staff_id": str(uuid.uuid4()),
            "kind": "approval",
            "count": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
        },
        headers=risk.service("core-banking", scope="risk:score"),
    )
    assert response.status_code == 403
