"""Intake: services, customers and staff report; a wave of related reports is one incident."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from services.incidents.models import audit_log
from tests.incidents.conftest import IncidentsClient


def without_mac(detail: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in detail.items() if key != "_mac"}


async def test_a_service_report_opens_an_incident_with_the_types_default_level(incidents: IncidentsClient) -> None:
    response = await incidents.report()
    assert response.status_code == 201, response.text
    assert response.json()["created"] is True
    incident_id = response.json()["incident_id"]
    detail = (await incidents.http.get(f"/staff/incidents/{incident_id}", headers=incidents.staff())).json()
    assert detail["state"] == "reported"
    assert detail["level"] == 3  # account_takeover's documented default
    assert detail["source"] == "risk_decision"
    assert detail["reporter"] == "risk"
    assert detail["discovered_at"] == incidents.clock.now.isoformat().replace("+00:00", "Z")
    assert [o["value"] for o in detail["observables"]] == ["203.0.113.7"]
    assert len(detail["reports"]) == 1


async def test_a_wave_of_related_reports_is_one_incident(incidents: IncidentsClient) -> None:
    key = f"account:{uuid.uuid4()}"
    account = str(uuid.uuid4())
    answers = await asyncio.gather(
        *(
            incidents.report(
                correlation_key=key, account_id=account, observables=[{"kind": "ip", "value": f"198.51.100.{i}"}]
            )
            for i in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [200] * 7 + [201]
    assert len({a.json()["incident_id"] for a in answers}) == 1
    incident_id = answers[0].json()["incident_id"]
    detail = (await incidents.http.get(f"/staff/incidents/{incident_id}", headers=incidents.staff())).json()
    assert detail["report_count"] == 8
    assert len(detail["reports"]) == 8  # every report kept
    assert len(detail["observables"]) == 8
    # one playbook ran: one freeze message, not eight
    freezes = [m for m in await incidents.messages() if m.path.endswith("/freeze")]
    assert len(freezes) == 1


async def test_a_more_severe_report_raises_the_level_and_the_change_is_kept(incidents: IncidentsClient) -> None:
    key = f"account:{uuid.uuid4()}"
    first = await incidents.report(correlation_key=key)
    second = await incidents.report(correlation_key=key, level=2)
    assert second.status_code == 200
    incident_id = first.json()["incident_id"]
    detail = (await incidents.http.get(f"/staff/incidents/{incident_id}", headers=incidents.staff())).json()
    assert detail["level"] == 2
    events = (await incidents.http.get(f"/staff/incidents/{incident_id}/timeline", headers=incidents.staff())).json()
    attached = [e for e in events if e["kind"] == "report_attached"]
    assert attached[0]["detail"]["level"] == {"from": 3, "to": 2}


async def test_a_repeated_delivery_is_applied_once(incidents: IncidentsClient) -> None:
    body = {
        "source": "identity_signal",
        "type": "login_anomaly",
        "correlation_key": "login:1",
        "summary": "impossible travel",
        "occurred_at": incidents.clock.now.isoformat(),
        "reference": {"kind": "login", "id": "l-1"},
    }
    headers = {**incidents.service("identity"), "Idempotency-Key": "delivery-0001"}
    first = await incidents.http.post("/internal/reports", json=body, headers=headers)
    again = await incidents.http.post("/internal/reports", json=body, headers=headers)
    assert first.status_code == 201
    assert again.status_code == 200
    assert again.json() == {"incident_id": first.json()["incident_id"], "created": False}
    detail = (
        await incidents.http.get(f"/staff/incidents/{first.json()['incident_id']}", headers=incidents.staff())
    ).json()
    assert detail["report_count"] == 1


async def test_reports_need_the_scope_and_an_idempotency_key(incidents: IncidentsClient) -> None:
    body = {
        "source": "risk_alert",
        "type": "intrusion",
        "correlation_key": "x",
        "summary": "s",
        "occurred_at": incidents.clock.now.isoformat(),
        "reference": {"kind": "alert", "id": "a"},
    }
    unscoped = await incidents.http.post(
        "/internal/reports",
        json=body,
        headers={**incidents.service("vault", scope=""), "Idempotency-Key": "k-123456789"},
    )
    assert unscoped.status_code == 403
    customer = await incidents.http.post(
        "/internal/reports",
        json=body,
        headers={**incidents.customer(str(uuid.uuid4())), "Idempotency-Key": "k-123456789"},
    )
    assert customer.status_code == 403
    no_key = await incidents.http.post("/internal/reports", json=body, headers=incidents.service("risk"))
    assert no_key.status_code == 422
    bad_type = await incidents.http.post(
        "/internal/reports",
        json={**body, "type": "alien_invasion"},
        headers={**incidents.service("risk"), "Idempotency-Key": "k-223456789"},
    )
    assert bad_type.status_code == 422


async def test_a_customer_reports_their_own_account_taken_over(incidents: IncidentsClient) -> None:
    account = str(uuid.uuid4())
    response = await incidents.http.post(
        "/customer/takeover-reports",
        json={"description": "I did not make these transfers"},
        headers=incidents.customer(account),
    )
    assert response.status_code == 201, response.text
    incident_id = response.json()["incident_id"]
    again = await incidents.http.post("/customer/takeover-reports", json={}, headers=incidents.customer(account))
    assert again.status_code == 200
    assert again.json()["incident_id"] == incident_id
    detail = (await incidents.http.get(f"/staff/incidents/{incident_id}", headers=incidents.staff())).json()
    assert detail["type"] == "account_takeover"
    assert detail["source"] == "customer_report"
    assert detail["account_id"] == account
    assert detail["customer_id"] == account
    assert detail["scope"]["accounts"] == [account]
    clocks = (await incidents.http.get(f"/staff/incidents/{incident_id}/clocks", headers=incidents.staff())).json()
    minutes = {c["kind"]: c["target_seconds"] // 60 for c in clocks}
    assert minutes["verify"] == 10
    assert minutes["freeze"] == 30
    # the freeze request is queued for identity in the same transaction
    freeze = [m for m in await incidents.messages() if m.path == f"/v1/identity/internal/accounts/{account}/freeze"]
    assert len(freeze) == 1


async def test_a_customer_cannot_report_for_someone_else_nor_use_staff_routes(incidents: IncidentsClient) -> None:
    response = await incidents.http.post(
        "/customer/takeover-reports",
        json={"account_id": str(uuid.uuid4())},
        headers=incidents.customer(str(uuid.uuid4())),
    )
    assert response.status_code == 422  # the account is the token's subject; nothing else is accepted
    listing = await incidents.http.get("/staff/incidents", headers=incidents.customer(str(uuid.uuid4())))
    assert listing.status_code == 403


async def test_staff_open_one_by_hand_and_need_the_permission(incidents: IncidentsClient) -> None:
    body = {
        "type": "intrusion",
        "level": 1,
        "summary": "web shell on the statement server",
        "occurred_at": incidents.clock.now.isoformat(),
        "cause": "unpatched upload handler",
        "scope": {"systems": ["statements"], "records": 1200},
        "observables": [{"kind": "ip", "value": "192.0.2.10"}],
    }
    denied = await incidents.http.post("/staff/incidents", json=body, headers=incidents.staff("incident:read"))
    assert denied.status_code == 403
    response = await incidents.http.post("/staff/incidents", json=body, headers=incidents.staff())
    assert response.status_code == 201, response.text
    assert response.json()["level"] == 1
    assert response.json()["scope"]["records"] == 1200
    assert response.json()["reporter_kind"] == "staff"


async def test_the_state_machine_records_who_and_why_in_the_audit_chain(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report(type="data_leak", account_id=None, observables=[])).json()["incident_id"]
    officer = str(uuid.uuid4())
    headers = incidents.staff(subject=officer)
    skip = await incidents.http.post(
        f"/staff/incidents/{incident_id}/transitions", json={"to": "closed", "reason": "done"}, headers=headers
    )
    assert skip.status_code == 409
    assert skip.json()["code"] == "invalid_transition"
    for state in ("verified",):
        moved = await incidents.http.post(
            f"/staff/incidents/{incident_id}/transitions",
            json={"to": state, "reason": f"checked: {state}"},
            headers=headers,
        )
        assert moved.status_code == 200, moved.text
    async with incidents.app.state.database.sessionmaker() as session:
        entries = (
            await session.execute(
                select(audit_log.entries.c.actor, audit_log.entries.c.action, audit_log.entries.c.detail).where(
                    audit_log.entries.c.target == incident_id
                )
            )
        ).all()
    transitions = [e for e in entries if e.action == "incident.transition"]
    assert transitions[0].actor == officer
    # The entry's keyed MAC (``_mac``) rides in its detail; the rest is what was recorded.
    assert without_mac(transitions[0].detail) == {"from": "reported", "to": "verified", "reason": "checked: verified"}
    rejected = await incidents.http.post(
        f"/staff/incidents/{incident_id}/transitions", json={"to": "reported", "reason": "x"}, headers=headers
    )
    assert rejected.status_code == 409


async def test_changes_to_fixed_fields_keep_the_old_values(incidents: IncidentsClient) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    patched = await incidents.http.patch(
        f"/staff/incidents/{incident_id}",
        json={"level": 1, "cause": "SIM swap", "reason": "hundreds of accounts"},
        headers=incidents.staff(),
    )
    assert patched.status_code == 200
    assert patched.json()["level"] == 1
    events = (await incidents.http.get(f"/staff/incidents/{incident_id}/timeline", headers=incidents.staff())).json()
    updated = next(e for e in events if e["kind"] == "updated")
    assert updated["detail"]["changes"]["level"] == {"from": 3, "to": 1}
    assert updated["detail"]["changes"]["cause"] == {"from": "", "to": "SIM swap"}
    chain = (
        await incidents.http.get(f"/staff/incidents/{incident_id}/chain-reports", headers=incidents.staff())
    ).json()
    assert "regulator" in {c["audience"] for c in chain}  # level 1 reports up to the regulator
    levels = (await incidents.http.get("/staff/incident-levels", headers=incidents.staff())).json()
    assert [lv["level"] for lv in levels] == [1, 2, 3, 4]


async def test_raising_the_level_drafts_the_regulator_report_and_keeps_free_text_out_of_the_chain(
    incidents: IncidentsClient,
) -> None:
    incident_id = (await incidents.report()).json()["incident_id"]
    headers = incidents.staff()
    assert (
        await incidents.http.get(f"/staff/incidents/{incident_id}/regulator-report", headers=headers)
    ).status_code == 404
    await incidents.http.patch(
        f"/staff/incidents/{incident_id}",
        json={"level": 2, "cause": "phished by a caller posing as Mr Zhang", "reason": "wider than one account"},
        headers=headers,
    )
    report = (await incidents.http.get(f"/staff/incidents/{incident_id}/regulator-report", headers=headers)).json()
    assert report["body"]["level"] == 2
    assert report["overdue"] is False
    async with incidents.app.state.database.sessionmaker() as session:
        details = (
            await session.scalars(
                select(audit_log.entries.c.detail).where(
                    audit_log.entries.c.target == incident_id, audit_log.entries.c.action == "incident.updated"
                )
            )
        ).all()
    assert [without_mac(d) for d in details] == [{"fields": ["cause", "level"], "level": {"from": 3, "to": 2}}]
