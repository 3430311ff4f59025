"""The KPI page's figures from elsewhere: risk's alerts per analyst (null with a note when risk cannot
answer, never a 500) and governance's vulnerability fix cycle over the same period."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

from tests.incidents.conftest import IncidentsClient

READER = ("incident:read", "risk:read", "risk:modify")


async def test_risk_unreachable_gives_null_alerts_and_a_note_and_the_fix_cycle_still_counts(
    incidents: IncidentsClient,
) -> None:
    # the fixture's gateway (127.0.0.1:9) refuses every connection: risk cannot answer
    headers = incidents.staff(*READER)
    incidents.app.state.governance_today = date(2026, 12, 1)
    for severity, found_on in (("high", "2026-12-01"), ("critical", "2026-12-01"), ("high", "2026-11-30")):
        created = await incidents.http.post(
            "/staff/vulnerabilities",
            json={
                "title": "Outdated TLS library",
                "severity": severity,
                "system": "mobile-api",
                "owner": "Technology department",
                "found_on": found_on,
            },
            headers=headers,
        )
        assert created.status_code == 201, created.text
    start = incidents.clock.now.replace(hour=0)
    params = {"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()}
    response = await incidents.http.get("/staff/kpis", params=params, headers=headers)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["alerts_per_analyst"] is None
    assert report["sources_unavailable"] == ["risk"]
    cycle = report["vulnerability_fix_cycle"]
    assert (cycle["period_from"], cycle["period_to"]) == ("2026-12-01", "2026-12-01")  # `to` is exclusive
    rows = {row["severity"]: row for row in cycle["rows"]}
    assert (rows["all"]["found"], rows["all"]["open"]) == (2, 2)
    assert (rows["high"]["found"], rows["critical"]["found"]) == (1, 1)
    as_csv = await incidents.http.get("/staff/kpis", params={**params, "format": "csv"}, headers=headers)
    assert as_csv.status_code == 200
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert ["source_unavailable", "risk", "1"] in lines
    assert ["vulnerability_fix_cycle", "all/found", "2"] in lines
    assert ["vulnerability_fix_cycle", "high/open", "1"] in lines
    assert not [line for line in lines if line[0] == "alerts_per_analyst"]


async def test_a_naive_period_is_refused(incidents: IncidentsClient) -> None:
    naive = {"from": "2026-12-01T00:00:00", "to": "2026-12-02T00:00:00"}
    response = await incidents.http.get("/staff/kpis", params=naive, headers=incidents.staff())
    assert (response.status_code, response.json()["code"]) == (400, "invalid_period")
