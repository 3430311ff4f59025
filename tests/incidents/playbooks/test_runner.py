"""Playbooks run from data: ordered steps through the outbox, outcomes recorded, failures visible,
re-runs and skips with reasons, and a restart in the middle loses no step and repeats none."""

from __future__ import annotations

import uuid
from typing import Any

from tests.incidents.conftest import IncidentsClient, start_incidents
from tests.support.database import TestDatabases


async def _steps(incidents: IncidentsClient, incident_id: str) -> list[dict[str, Any]]:
    response = await incidents.http.get(f"/staff/incidents/{incident_id}/steps", headers=incidents.staff())
    assert response.status_code == 200, response.text
    steps: list[dict[str, Any]] = response.json()
    return steps


def _status(steps: list[dict[str, Any]]) -> dict[str, str]:
    return {f"{s['position']}:{s['action']}": s["status"] for s in steps}


async def test_a_takeover_playbook_runs_in_order_through_the_outbox(incidents: IncidentsClient) -> None:
    account = str(uuid.uuid4())
    incident_id = (await incidents.report(account_id=account)).json()["incident_id"]
    steps = await _steps(incidents, incident_id)
    assert [s["action"] for s in steps][:3] == ["freeze_account", "revoke_sessions", "notify_customer"]
    assert steps[0]["status"] == "running"
    assert steps[1]["status"] == "pending"  # waits for the blocking freeze
    freeze_key = f"incidents:{incident_id}:step:1:attempt:1:0"
    assert steps[0]["outbox_keys"] == [freeze_key]
    [message] = await incidents.messages()
    assert message.target == "identity"
    assert message.path == f"/v1/identity/internal/accounts/{account}/freeze"
    assert message.idempotency_key == freeze_key

    await incidents.settle(freeze_key)
    result = await incidents.tick()
    assert result.steps_settled == 1
    steps = await _steps(incidents, incident_id)
    assert steps[0]["status"] == "succeeded"
    assert steps[1]["status"] == "running"
    clocks = (await incidents.http.get(f"/staff/incidents/{incident_id}/clocks", headers=incidents.staff())).json()
    assert next(c for c in clocks if c["kind"] == "freeze")["met_at"] is not None

    await incidents.settle(steps[1]["outbox_keys"][0])
    await incidents.tick()
    status = _status(await _steps(incidents, incident_id))
    assert status["2:revoke_sessions"] == "succeeded"
    assert status["3:notify_customer"] == "running"
    assert status["4:assign_responder"] == "failed"  # nobody on call: visible, re-runnable
    assert status["5:block_ip"] == "running"
    assert status["6:notify_regulator"] == "skipped"  # level 3: no regulator report
    assert status["7:task"] == "pending"  # manual
    by_path = {m.path: m for m in await incidents.messages()}
    notify = by_path[f"/v1/identity/internal/accounts/{account}/notifications"]
    assert notify.payload["event"] == "incident_update"
    assert account not in notify.payload["message"]  # no personal data, only the incident's reference
    block = by_path["/v1/risk/internal/lists/ip/entries"]
    assert block.payload == {
        "value": "203.0.113.7",
        "verdict": "block",
        "reason": f"incident {incident_id} (account_takeover)",
        "reference": incident_id,
    }
    assert len(await incidents.messages()) == 4  # one per request, nothing repeated


async def test_the_customer_is_frozen_by_identity_s_id_not_the_core_account(incidents: IncidentsClient) -> None:
    """Risk's reports carry the core system's account and identity's customer: identity is asked about the customer."""
    customer = str(uuid.uuid4())
    await incidents.report(type="fraudulent_transaction", account_id="CORE-LI-1", customer_id=customer)
    [message] = await incidents.messages()
    assert message.path == f"/v1/identity/internal/accounts/{customer}/freeze"


async def test_a_failed_step_is_visible_then_re_run_or_skipped_with_a_reason(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    first_key = f"incidents:{incident_id}:step:1:attempt:1:0"
    await incidents.settle(first_key, delivered=False, error="503: identity unavailable")
    await incidents.tick()
    [freeze, revoke, *_] = await _steps(incidents, incident_id)
    assert freeze["status"] == "failed"
    assert "503" in freeze["last_error"]
    assert revoke["status"] == "pending"  # a failed blocking step holds the rest
    operator = incidents.staff()
    rerun = await incidents.http.post(f"/staff/incidents/{incident_id}/steps/1/run", headers=operator)
    assert rerun.status_code == 200, rerun.text
    assert rerun.json()["attempt"] == 2
    assert rerun.json()["outbox_keys"] == [f"incidents:{incident_id}:step:1:attempt:2:0"]
    again = await incidents.http.post(f"/staff/incidents/{incident_id}/steps/1/run", headers=operator)
    assert again.status_code == 409  # running: not started twice
    await incidents.settle(rerun.json()["outbox_keys"][0], delivered=False)
    await incidents.tick()
    no_reason = await incidents.http.post(f"/staff/incidents/{incident_id}/steps/1/skip", json={}, headers=operator)
    assert no_reason.status_code == 422
    skipped = await incidents.http.post(
        f"/staff/incidents/{incident_id}/steps/1/skip", json={"reason": "account already closed"}, headers=operator
    )
    assert skipped.status_code == 200
    assert skipped.json()["note"] == "account already closed"
    assert _status(await _steps(incidents, incident_id))["2:revoke_sessions"] == "running"
    events = (await incidents.http.get(f"/staff/incidents/{incident_id}/timeline", headers=operator)).json()
    kinds = [e["kind"] for e in events]
    assert kinds.count("step_failed") == 2
    assert "step_skipped" in kinds


async def test_running_steps_needs_the_execute_permission(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    response = await incidents.http.post(
        f"/staff/incidents/{incident_id}/steps/7/skip",
        json={"reason": "x"},
        headers=incidents.staff("incident:read", "incident:modify"),
    )
    assert response.status_code == 403


async def test_a_manual_step_is_completed_with_its_whole_checklist(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    steps = await _steps(incidents, incident_id)
    callback = steps[6]
    assert callback["mode"] == "manual"
    operator = incidents.staff()
    partial = await incidents.http.post(
        f"/staff/incidents/{incident_id}/steps/7/complete",
        json={"note": "called", "checklist_done": callback["checklist"][:1]},
        headers=operator,
    )
    assert partial.status_code == 409
    assert partial.json()["missing"] == callback["checklist"][1:]
    done = await incidents.http.post(
        f"/staff/incidents/{incident_id}/steps/7/complete",
        json={"note": "customer confirmed on the phone", "checklist_done": callback["checklist"]},
        headers=operator,
    )
    assert done.status_code == 200
    assert done.json()["status"] == "succeeded"
    cannot_run = await incidents.http.post(
        f"/staff/incidents/{incident_id}/steps/1/complete", json={"note": "x"}, headers=operator
    )
    assert cannot_run.status_code == 409


async def test_a_verified_incident_is_contained_once_its_containment_steps_are_done(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    operator = incidents.staff()
    verified = await incidents.http.post(
        f"/staff/incidents/{incident_id}/transitions",
        json={"to": "verified", "reason": "call-back confirmed"},
        headers=operator,
    )
    assert verified.json()["state"] == "verified"
    for position in (1, 2, 5):
        for step in await _steps(incidents, incident_id):
            if step["position"] == position and step["status"] == "running":
                await incidents.settle(step["outbox_keys"][0])
        await incidents.tick()
    detail = (await incidents.http.get(f"/staff/incidents/{incident_id}", headers=operator)).json()
    assert detail["state"] == "contained"
    assert detail["contained_at"] is not None
    events = (await incidents.http.get(f"/staff/incidents/{incident_id}/timeline", headers=operator)).json()
    contained = next(e for e in events if e["kind"] == "transition" and e["detail"]["to"] == "contained")
    assert contained["actor"] == "incidents"
    assert "containment step" in contained["detail"]["reason"]


async def test_a_restart_in_the_middle_loses_no_step_and_repeats_none(test_databases: TestDatabases) -> None:
    url = await test_databases.clone("incidents_restart")
    async for before in start_incidents(url):
        incident_id = (await before.report()).json()["incident_id"]
        clock = before.clock
    # The process is gone; the freeze was queued but never delivered. A new process takes over.
    async for after in start_incidents(url, clock=clock):
        await after.tick()
        await after.tick()
        messages = await after.messages()
        assert [m.idempotency_key for m in messages] == [f"incidents:{incident_id}:step:1:attempt:1:0"]
        await after.settle(messages[0].idempotency_key)
        await after.tick()
        await after.tick()
        paths = [m.path for m in await after.messages()]
        assert len(paths) == 2
        assert paths[1].endswith("/revoke-sessions")
        assert len(set(paths)) == len(paths)


async def test_playbooks_change_only_with_an_approval_of_exactly_that_change(incidents: IncidentsClient) -> None:
    maker = incidents.staff()
    versions = (await incidents.http.get("/staff/playbooks/login_anomaly", headers=maker)).json()
    assert [v["version"] for v in versions] == [1]
    steps = [
        {
            "action": "revoke_sessions",
            "mode": "automatic",
            "title": "Revoke",
            "phase": "containment",
            "blocking": True,
            "checklist": [],
        },
        {
            "action": "notify_customer",
            "mode": "automatic",
            "title": "Tell",
            "phase": "communication",
            "blocking": False,
            "checklist": [],
        },
    ]
    body = {"name": "Login anomaly v2", "steps": steps}
    unapproved = await incidents.http.post(
        "/staff/playbooks/login_anomaly/versions", json={**body, "approval_id": str(uuid.uuid4())}, headers=maker
    )
    assert unapproved.status_code == 409
    assert unapproved.json()["code"] == "approval_refused"
    approval = incidents.permissions.approve("incidents.playbook_change", {"type": "login_anomaly", **body})
    tampered = await incidents.http.post(
        "/staff/playbooks/login_anomaly/versions",
        json={**body, "steps": steps[:1], "approval_id": approval},
        headers=maker,
    )
    assert tampered.status_code == 409
    old = (await incidents.report(type="login_anomaly")).json()["incident_id"]
    changed = await incidents.http.post(
        "/staff/playbooks/login_anomaly/versions", json={**body, "approval_id": approval}, headers=maker
    )
    assert changed.status_code == 201, changed.text
    assert changed.json()["version"] == 2
    replay = await incidents.http.post(
        "/staff/playbooks/login_anomaly/versions", json={**body, "approval_id": approval}, headers=maker
    )
    assert replay.status_code == 409
    new = (await incidents.report(type="login_anomaly")).json()["incident_id"]
    assert len(await _steps(incidents, new)) == 2
    assert len(await _steps(incidents, old)) == 4  # open incidents keep the version they started with
    manual_auto = await incidents.http.post(
        "/staff/playbooks/tampering/versions",
        json={
            "name": "x",
            "steps": [{"action": "restore_backup", "mode": "automatic", "title": "r"}],
            "approval_id": approval,
        },
        headers=maker,
    )
    assert manual_auto.status_code == 422
