"""Vulnerabilities: due dates in working days, overdue flags, fix-cycle figures as JSON and CSV."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date
from typing import Any

from tests.incidents.governance.conftest import Governance

BASE = "/staff/vulnerabilities"


def vulnerability(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Outdated TLS library on the mobile API",
        "severity": "high",
        "system": "mobile-api",
        "reference": "CVE-2026-0001",
        "owner": "Technology department",
        "found_on": "2026-09-25",
    }
    body.update(overrides)
    return body


async def test_a_vulnerability_is_due_fifteen_working_days_later_and_flagged_when_late(gov: Governance) -> None:
    writer = gov.staff("risk:modify", "risk:read")
    gov.pin_today(date(2026, 10, 9))
    created = await gov.http.post(BASE, json=vulnerability(), headers=writer)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["due_on"], body["working_days"], body["overdue"]) == ("2026-10-22", 15, False)
    assert body["working_days_left"] == 10  # Oct 10 (a Saturday worked), 12-16, 19-22

    gov.pin_today(date(2026, 10, 23))
    overdue = (await gov.http.get(BASE, params={"overdue": "true"}, headers=writer)).json()
    assert [v["id"] for v in overdue] == [body["id"]]

    fixed = await gov.http.post(f"{BASE}/{body['id']}/fix", json={"fixed_on": "2026-10-23"}, headers=writer)
    assert fixed.status_code == 200, fixed.text
    assert (fixed.json()["fix_working_days"], fixed.json()["overdue"]) == (16, True)
    again = await gov.http.post(f"{BASE}/{body['id']}/fix", json={"fixed_on": "2026-10-23"}, headers=writer)
    assert (again.status_code, again.json()["code"]) == (409, "invalid_state")


async def test_a_shorter_cycle_can_be_set_and_bad_dates_are_refused(gov: Governance) -> None:
    writer = gov.staff("risk:modify", "risk:read")
    gov.pin_today(date(2026, 10, 9))
    critical = await gov.http.post(BASE, json=vulnerability(severity="critical", working_days=3), headers=writer)
    assert critical.json()["due_on"] == "2026-09-30"
    future = await gov.http.post(BASE, json=vulnerability(found_on="2026-12-01"), headers=writer)
    assert (future.status_code, future.json()["code"]) == (400, "invalid_period")
    early_fix = await gov.http.post(
        f"{BASE}/{critical.json()['id']}/fix", json={"fixed_on": "2026-09-01"}, headers=writer
    )
    assert early_fix.status_code == 400
    unknown_risk = await gov.http.post(BASE, json=vulnerability(risk_id=str(uuid.uuid4())), headers=writer)
    assert unknown_risk.status_code == 404
    reader_only = gov.staff("risk:read")
    assert (await gov.http.post(BASE, json=vulnerability(), headers=reader_only)).status_code == 403


async def test_fix_cycle_figures_as_json_and_csv(gov: Governance) -> None:
    writer = gov.staff("risk:modify", "risk:read")
    gov.pin_today(date(2026, 11, 30))
    ids = []
    for found, severity in [
        ("2026-10-12", "high"),
        ("2026-10-12", "high"),
        ("2026-10-12", "low"),
        ("2026-11-02", "low"),
    ]:
        created = await gov.http.post(BASE, json=vulnerability(found_on=found, severity=severity), headers=writer)
        ids.append(created.json()["id"])
    # Fixed in 4 and 20 working days (on time / late); one accepted; one left open past its date.
    await gov.http.post(f"{BASE}/{ids[0]}/fix", json={"fixed_on": "2026-10-16"}, headers=writer)
    await gov.http.post(f"{BASE}/{ids[1]}/fix", json={"fixed_on": "2026-11-09"}, headers=writer)
    accepted = await gov.http.post(f"{BASE}/{ids[2]}/accept", json={"reason": "System retired"}, headers=writer)
    assert accepted.json()["status"] == "accepted"

    figures = await gov.http.get(f"{BASE}/fix-cycle", params={"from": "2026-10-01", "to": "2026-11-30"}, headers=writer)
    assert figures.status_code == 200, figures.text
    rows = {row["severity"]: row for row in figures.json()["rows"]}
    assert (rows["high"]["fixed"], rows["high"]["fixed_on_time"], rows["high"]["fixed_late"]) == (2, 1, 1)
    assert (rows["high"]["fix_days_p50"], rows["high"]["fix_days_mean"]) == (12.0, 12.0)
    assert rows["high"]["on_time_rate"] == 0.5
    assert (rows["low"]["accepted"], rows["low"]["open"], rows["low"]["open_overdue"]) == (1, 1, 1)
    assert rows["all"]["found"] == 4
    assert figures.json()["target_working_days"] == 15

    exported = await gov.http.get(
        f"{BASE}/fix-cycle.csv", params={"from": "2026-10-01", "to": "2026-11-30"}, headers=writer
    )
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["severity"] for row in table] == ["low", "medium", "high", "critical", "all"]
    assert table[2]["fixed_late"] == "1"

    reversed_period = await gov.http.get(
        f"{BASE}/fix-cycle", params={"from": "2026-12-01", "to": "2026-10-01"}, headers=writer
    )
    assert reversed_period.status_code == 400
