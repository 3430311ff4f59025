"""Post-mortems: the timeline from the recorded events, corrective actions to closure (overdue ones escalate),
accountability with the decision and who took it."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.incidents.conftest import IncidentsClient


async def test_a_post_mortem_with_an_overdue_corrective_action(incidents: IncidentsClient) -> None:
    lead = str(uuid.uuid4())
    headers = incidents.staff(subject=lead)
    incident_id = (await incidents.report()).json()["incident_id"]
    written = await incidents.http.put(
        f"/staff/incidents/{incident_id}/postmortem",
        json={
            "root_cause": "SIM swap at the carrier",
            "impact": "1 account, 2 transfers blocked",
            "went_well": "frozen within 2 seconds",
            "went_badly": "verification took 9 minutes",
            "lessons": "add a carrier SIM-swap signal",
        },
        headers=headers,
    )
    assert written.status_code == 200, written.text
    body = written.json()
    assert body["author"] == lead
    kinds = [e["kind"] for e in body["timeline"]]
    assert kinds[0] == "opened"
    assert "postmortem_written" in kinds

    owner = str(uuid.uuid4())
    due = incidents.clock.now + timedelta(days=7)
    action = await incidents.http.post(
        f"/staff/incidents/{incident_id}/corrective-actions",
        json={"title": "Subscribe to carrier SIM-swap feed", "owner": owner, "due_at": due.isoformat()},
        headers=headers,
    )
    assert action.status_code == 201
    on_time = await incidents.http.post(
        f"/staff/incidents/{incident_id}/corrective-actions",
        json={"title": "Update the call-back script", "owner": owner, "due_at": due.isoformat()},
        headers=headers,
    )
    closed = await incidents.http.post(
        f"/staff/corrective-actions/{on_time.json()['id']}/close",
        json={"resolution": "script v3 live"},
        headers=headers,
    )
    assert closed.status_code == 200

    incidents.clock.move(days=8)
    result = await incidents.tick()
    assert result.actions_overdue == 1
    assert (await incidents.tick()).actions_overdue == 0
    overdue = (
        await incidents.http.get("/staff/corrective-actions", params={"overdue": "true"}, headers=headers)
    ).json()
    assert [(a["id"], a["overdue"]) for a in overdue] == [(action.json()["id"], True)]
    owners_queue = (await incidents.http.get("/staff/escalations", headers=incidents.staff(subject=owner))).json()
    assert [e["kind"] for e in owners_queue] == ["corrective_action_overdue"]

    responsibility = await incidents.http.post(
        f"/staff/incidents/{incident_id}/accountability",
        json={
            "kind": "management",
            "responsible": "fraud operations",
            "finding": "no carrier signal was subscribed to",
            "decision": "budget approved; owner to report monthly",
        },
        headers=headers,
    )
    assert responsibility.status_code == 201
    assert responsibility.json()["decided_by"] == lead
    invalid = await incidents.http.post(
        f"/staff/incidents/{incident_id}/accountability",
        json={"kind": "cosmic", "responsible": "x", "finding": "x", "decision": "x"},
        headers=headers,
    )
    assert invalid.status_code == 422
    full = (await incidents.http.get(f"/staff/incidents/{incident_id}/postmortem", headers=headers)).json()
    assert [a["kind"] for a in full["accountability"]] == ["management"]
    assert len(full["corrective_actions"]) == 2
