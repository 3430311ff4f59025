"""SLA clocks with a moved clock: nearing escalates to the next person, a breach to the manager;
pauses only on documented conditions; met clocks stop."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from tests.incidents.conftest import IncidentsClient


async def _rota(incidents: IncidentsClient) -> dict[str, str]:
    people = {tier: str(uuid.uuid4()) for tier in ("primary", "secondary", "manager")}
    headers = incidents.staff()
    for tier, person in people.items():
        response = await incidents.http.post(
            "/staff/oncall/shifts",
            json={
                "tier": tier,
                "staff_id": person,
                "starts_at": (incidents.clock.now - timedelta(hours=1)).isoformat(),
                "ends_at": (incidents.clock.now + timedelta(hours=12)).isoformat(),
            },
            headers=headers,
        )
        assert response.status_code == 201, response.text
    return people


async def _clocks(incidents: IncidentsClient, incident_id: str) -> dict[str, dict[str, Any]]:
    response = await incidents.http.get(f"/staff/incidents/{incident_id}/clocks", headers=incidents.staff())
    return {c["kind"]: c for c in response.json()}


async def test_an_unverified_takeover_escalates_when_near_and_when_breached(incidents: IncidentsClient) -> None:
    people = await _rota(incidents)
    incident_id = (await incidents.report()).json()["incident_id"]

    incidents.clock.move(minutes=7)
    result = await incidents.tick()
    assert result.clocks_warned == 0

    incidents.clock.move(minutes=1, seconds=1)  # past 80 % of the 10-minute verification
    result = await incidents.tick()
    assert result.clocks_warned == 1
    assert result.clocks_breached == 0
    nearing = (
        await incidents.http.get("/staff/escalations", headers=incidents.staff(subject=people["secondary"]))
    ).json()
    assert [(e["kind"], e["subject_ref"]) for e in nearing] == [("sla_nearing", "verify")]

    incidents.clock.move(minutes=2)
    result = await incidents.tick()
    assert result.clocks_breached == 1
    again = await incidents.tick()
    assert again.clocks_breached == 0  # each crossing escalates once
    manager_queue = (
        await incidents.http.get("/staff/escalations", headers=incidents.staff(subject=people["manager"]))
    ).json()
    assert [(e["kind"], e["subject_ref"]) for e in manager_queue] == [("sla_breached", "verify")]
    told = [
        m
        for m in await incidents.messages()
        if m.path == f"/v1/identity/internal/accounts/{people['manager']}/notifications"
    ]
    assert len(told) == 1  # through identity's notifications too (the contract's shape)
    assert told[0].payload["event"] == "security_alert"
    assert told[0].idempotency_key == f"incidents:escalation:{manager_queue[0]['id']}"
    clocks = await _clocks(incidents, incident_id)
    assert clocks["verify"]["breached"] is True
    assert clocks["freeze"]["breached"] is False  # 30 minutes

    breaches = (
        await incidents.http.get(
            "/staff/sla/breaches",
            params={
                "from": (incidents.clock.now - timedelta(hours=1)).isoformat(),
                "to": (incidents.clock.now + timedelta(seconds=1)).isoformat(),
            },
            headers=incidents.staff(),
        )
    ).json()
    assert [(b["incident_id"], b["kind"]) for b in breaches] == [(incident_id, "verify")]
    events = (await incidents.http.get(f"/staff/incidents/{incident_id}/timeline", headers=incidents.staff())).json()
    assert "sla_breached" in [e["kind"] for e in events]

    acknowledged = await incidents.http.post(
        f"/staff/escalations/{manager_queue[0]['id']}/acknowledge", headers=incidents.staff(subject=people["manager"])
    )
    assert acknowledged.status_code == 200
    assert (
        await incidents.http.get("/staff/escalations", headers=incidents.staff(subject=people["manager"]))
    ).json() == []


async def test_a_verified_takeover_stops_its_clock_and_nothing_escalates(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    incidents.clock.move(minutes=4)
    verified = await incidents.http.post(
        f"/staff/incidents/{incident_id}/transitions",
        json={"to": "verified", "reason": "customer confirmed"},
        headers=incidents.staff(),
    )
    assert verified.status_code == 200
    incidents.clock.move(minutes=20)
    result = await incidents.tick()
    clocks = await _clocks(incidents, incident_id)
    assert clocks["verify"]["met_at"] is not None
    assert clocks["verify"]["breached"] is False
    assert clocks["acknowledge"]["met_at"] is not None  # a staff action acknowledged it
    assert result.clocks_breached == 0


async def test_with_nobody_on_call_an_escalation_waits_in_the_tiers_queue(incidents: IncidentsClient) -> None:
    await incidents.report()
    incidents.clock.move(minutes=11)
    await incidents.tick()
    queue = (
        await incidents.http.get("/staff/escalations", params={"tier": "manager"}, headers=incidents.staff())
    ).json()
    assert {e["kind"] for e in queue} == {"sla_breached"}
    assert all(e["recipient"] is None for e in queue)


async def test_only_the_resolution_clock_pauses_and_only_for_a_documented_reason(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    headers = incidents.staff()
    verify = await incidents.http.post(
        f"/staff/incidents/{incident_id}/clocks/verify/pause", json={"reason": "waiting_for_customer"}, headers=headers
    )
    assert verify.status_code == 409
    assert verify.json()["code"] == "clock_not_pausable"
    bad_reason = await incidents.http.post(
        f"/staff/incidents/{incident_id}/clocks/resolve/pause", json={"reason": "lunch"}, headers=headers
    )
    assert bad_reason.status_code == 422
    before = (await _clocks(incidents, incident_id))["resolve"]
    paused = await incidents.http.post(
        f"/staff/incidents/{incident_id}/clocks/resolve/pause", json={"reason": "waiting_for_customer"}, headers=headers
    )
    assert paused.status_code == 200
    incidents.clock.move(hours=30)  # past the 24 h level-3 target, but paused
    result = await incidents.tick()
    assert (await _clocks(incidents, incident_id))["resolve"]["breached"] is False
    assert result.clocks_breached >= 1  # the verify and freeze clocks never paused
    resumed = await incidents.http.post(f"/staff/incidents/{incident_id}/clocks/resolve/resume", headers=headers)
    assert resumed.status_code == 200
    moved_by = resumed.json()["paused_seconds"]
    assert moved_by == 30 * 3600
    assert resumed.json()["due_at"] > before["due_at"]


async def test_two_replicas_escalate_each_crossing_once(incidents: IncidentsClient) -> None:
    """Two workers (as on two replicas) on the same rows: SKIP LOCKED splits them, none escalates twice."""
    import asyncio

    from services.incidents.worker import ResponseWorker

    for _ in range(5):
        await incidents.report()
    incidents.clock.move(minutes=11)
    other = ResponseWorker(incidents.app.state.database.sessionmaker, incidents.worker.settings, incidents.clock)
    first, second = await asyncio.gather(incidents.tick(), other.tick())
    assert first.clocks_breached + second.clocks_breached == 5  # the five verify clocks, each once
    assert first.clocks_warned + second.clocks_warned == 5
    queue = (
        await incidents.http.get("/staff/escalations", params={"tier": "manager"}, headers=incidents.staff())
    ).json()
    assert len([e for e in queue if e["kind"] == "sla_breached"]) == 5
