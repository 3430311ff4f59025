"""Response team: roles, the rota with hand-over, the responder assigned by the playbook, reporting up the chain."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.incidents.conftest import IncidentsClient


async def test_the_playbook_assigns_the_on_call_responder_and_a_hand_over_moves_the_rota(
    incidents: IncidentsClient,
) -> None:
    alice, bob = str(uuid.uuid4()), str(uuid.uuid4())
    headers = incidents.staff()
    shift = await incidents.http.post(
        "/staff/oncall/shifts",
        json={
            "tier": "primary",
            "staff_id": alice,
            "starts_at": (incidents.clock.now - timedelta(hours=1)).isoformat(),
            "ends_at": (incidents.clock.now + timedelta(hours=8)).isoformat(),
        },
        headers=headers,
    )
    assert shift.status_code == 201
    first = (await incidents.report(type="intrusion", account_id=None)).json()["incident_id"]
    team = (await incidents.http.get(f"/staff/incidents/{first}/team", headers=headers)).json()
    assert [(m["role"], m["staff_id"]) for m in team] == [("incident_commander", alice)]

    incidents.clock.move(hours=2)
    handed = await incidents.http.post(
        "/staff/oncall/handover",
        json={"tier": "primary", "to_staff_id": bob, "note": "incident 1 open, waiting on the vendor"},
        headers=headers,
    )
    assert handed.status_code == 201
    second = (await incidents.report(type="intrusion", account_id=None)).json()["incident_id"]
    team = (await incidents.http.get(f"/staff/incidents/{second}/team", headers=headers)).json()
    assert [m["staff_id"] for m in team] == [bob]
    rota = (
        await incidents.http.get(
            "/staff/oncall", params={"from": (incidents.clock.now - timedelta(hours=4)).isoformat()}, headers=headers
        )
    ).json()
    assert [(s["staff_id"], s["handover_note"]) for s in rota] == [
        (alice, None),
        (bob, "incident 1 open, waiting on the vendor"),
    ]

    reassigned = await incidents.http.post(
        f"/staff/incidents/{first}/team",
        json={"role": "incident_commander", "staff_id": bob, "handover_note": "shift change"},
        headers=headers,
    )
    assert reassigned.status_code == 201
    investigator = await incidents.http.post(
        f"/staff/incidents/{first}/team", json={"role": "investigator", "staff_id": alice}, headers=headers
    )
    assert investigator.status_code == 201
    team = (await incidents.http.get(f"/staff/incidents/{first}/team", headers=headers)).json()
    released = [m for m in team if m["released_at"] is not None]
    assert [(m["staff_id"], m["handover_note"]) for m in released] == [(alice, "shift change")]
    bad_role = await incidents.http.post(
        f"/staff/incidents/{first}/team", json={"role": "janitor", "staff_id": alice}, headers=headers
    )
    assert bad_role.status_code == 422


async def test_a_major_incident_is_reported_up_the_chain_and_late_reports_escalate(incidents: IncidentsClient) -> None:
    headers = incidents.staff()
    incident_id = (await incidents.report(type="data_leak", level=1, account_id=None)).json()["incident_id"]
    chain = (await incidents.http.get(f"/staff/incidents/{incident_id}/chain-reports", headers=headers)).json()
    assert [c["audience"] for c in chain] == [
        "head_of_security",
        "chief_information_officer",
        "executive_board",
        "regulator",
    ]
    told = await incidents.http.post(
        f"/staff/incidents/{incident_id}/chain-reports/head_of_security/reported",
        json={"channel": "phone"},
        headers=headers,
    )
    assert told.status_code == 200
    assert told.json()["overdue"] is False
    twice = await incidents.http.post(
        f"/staff/incidents/{incident_id}/chain-reports/head_of_security/reported", json={}, headers=headers
    )
    assert twice.status_code == 409
    regulator = (await incidents.http.get(f"/staff/incidents/{incident_id}/regulator-report", headers=headers)).json()
    assert regulator["body"]["level"] == 1
    assert regulator["body"]["type"] == "data_leak"
    assert regulator["deadline_at"] == (incidents.clock.now + timedelta(hours=2)).isoformat().replace("+00:00", "Z")

    incidents.clock.move(minutes=31)
    result = await incidents.tick()
    assert result.chain_overdue == 1  # the CIO (30 min); the head of security was told
    queue = (await incidents.http.get("/staff/escalations", params={"tier": "manager"}, headers=headers)).json()
    assert ("chain_report_overdue", "chief_information_officer") in {(e["kind"], e["subject_ref"]) for e in queue}
    submitted = await incidents.http.post(f"/staff/incidents/{incident_id}/regulator-report/submitted", headers=headers)
    assert submitted.status_code == 200
    assert submitted.json()["submitted_at"] is not None
