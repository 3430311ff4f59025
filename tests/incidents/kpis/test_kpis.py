"""KPIs over a period, as JSON and as CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from tests.incidents.conftest import IncidentsClient


async def test_kpis_count_time_and_breaches_over_a_period(incidents: IncidentsClient) -> None:
    start = incidents.clock.now
    headers = incidents.staff()
    fast = (await incidents.report()).json()["incident_id"]
    await incidents.report(type="intrusion", level=2, account_id=None)
    await incidents.http.post("/customer/takeover-reports", json={}, headers=incidents.customer("c-1"))
    incidents.clock.move(minutes=2)
    await incidents.http.post(
        f"/staff/incidents/{fast}/transitions", json={"to": "verified", "reason": "ok"}, headers=headers
    )
    incidents.clock.move(minutes=20)
    await incidents.tick()  # the other takeovers' verify clocks breach
    params = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}
    report = (await incidents.http.get("/staff/kpis", params=params, headers=headers)).json()
    assert report["incidents"] == 3
    assert report["by_type"] == {"account_takeover": 2, "intrusion": 1}
    assert report["by_level"] == {"2": 1, "3": 2}
    assert report["time_to_verify"] == {"n": 1, "p50_seconds": 120.0, "p90_seconds": 120.0}
    assert report["sla_breaches_by_clock"]["verify"] == 1
    assert report["customer_complaints"] == 1
    as_csv = await incidents.http.get("/staff/kpis", params={**params, "format": "csv"}, headers=headers)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0] == ["metric", "dimension", "value"]
    assert ["incidents_by_type", "intrusion", "1"] in rows
    assert ["customer_complaints", "all", "1"] in rows
    backwards = await incidents.http.get(
        "/staff/kpis", params={"from": params["to"], "to": params["from"]}, headers=headers
    )
    assert backwards.status_code == 400
    assert (
        await incidents.http.get("/staff/kpis", params=params, headers=incidents.staff("incident:modify"))
    ).status_code == 403
