"""Subject status from identity, suspensions from risk and incidents, lifting under approval."""

from __future__ import annotations

import asyncio

import httpx

from tests.permissions.conftest import Perms, new_subject


async def status(
    perms: Perms, subject: str, value: str, service: str = "identity", key: str | None = None
) -> httpx.Response:
    headers = perms.service(service)
    if key:
        headers["Idempotency-Key"] = key
    return await perms.client.post(
        f"/internal/subjects/{subject}/status", json={"status": value, "reason": "test"}, headers=headers
    )


async def suspend(perms: Perms, subject: str, service: str = "risk") -> httpx.Response:
    return await perms.client.post(
        f"/internal/subjects/{subject}/suspension",
        json={"reason": "bulk reads at night"},
        headers=perms.service(service),
    )


async def test_frozen_subject_loses_high_risk_only_until_unfrozen(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    response = await status(perms, subject, "frozen")
    assert response.status_code == 200
    funds = await perms.check(subject, "funds:read")
    assert not funds["allowed"]
    assert "frozen" in funds["reason"]
    assert (await perms.check(subject, "account:read"))["allowed"]
    await status(perms, subject, "active")
    assert (await perms.check(subject, "funds:read"))["allowed"]


async def test_only_identity_and_incidents_report_status(perms: Perms) -> None:
    response = await status(perms, new_subject(), "frozen", service="vault")
    assert response.status_code == 403


async def test_status_redelivery_is_not_applied_twice(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    first = await status(perms, subject, "frozen", key="delivery-0001")
    assert first.json()["applied"] is True
    await status(perms, subject, "active", key="delivery-0002")
    replay = await status(perms, subject, "frozen", key="delivery-0001")
    assert replay.json()["applied"] is False
    assert (await perms.check(subject, "funds:read"))["allowed"]


async def test_closed_subject_loses_every_grant(perms: Perms) -> None:
    subject = await perms.staff_member("teller", "auditor")
    await status(perms, subject, "closed")
    assert not (await perms.check(subject, "approval:read"))["allowed"]
    grants = await perms.client.get(f"/staff/grants?subject={subject}", headers=perms.staff(perms.admin))
    assert grants.json() == []
    refused = await perms.request(subject, "teller", requester=perms.admin)
    assert refused.json()["code"] == "subject_closed"


async def test_suspension_takes_effect_at_once_and_lifting_needs_approval(perms: Perms) -> None:
    subject = await perms.staff_member("approver")
    assert (await perms.check(subject, "payment:check"))["allowed"]
    first = await suspend(perms, subject)
    assert first.json()["created"] is True
    again = await suspend(perms, subject, service="incidents")
    assert again.json()["created"] is False
    assert again.json()["id"] == first.json()["id"]
    denied = await perms.check(subject, "payment:check")
    assert not denied["allowed"]
    assert "suspended" in denied["reason"]
    assert (await perms.check(subject, "approval:read"))["allowed"]

    lift = await perms.client.post(
        f"/staff/subjects/{subject}/suspension/lift-requests",
        json={"comment": "false positive"},
        headers=perms.staff(subject),
    )
    assert lift.status_code == 201
    # The suspended person is the maker here, so cannot approve; nor can anyone without suspension:lift.
    assert (await perms.approve(lift.json()["id"], subject)).json()["code"] == "self_approval"
    assert (await perms.approve(lift.json()["id"], await perms.staff_member("manager"))).status_code == 403
    assert not (await perms.check(subject, "payment:check"))["allowed"]
    lifted = await perms.approve(lift.json()["id"], perms.admin)
    assert lifted.json()["state"] == "executed"
    assert (await perms.check(subject, "payment:check"))["allowed"]
    view = await perms.client.get(f"/staff/subjects/{subject}", headers=perms.staff(perms.admin))
    assert view.json()["suspension"] is None
    assert [g["role"] for g in view.json()["grants"]] == ["approver"]


async def test_suspended_subject_cannot_approve_own_lift_requested_by_another(perms: Perms) -> None:
    subject = await perms.staff_member("admin")
    await suspend(perms, subject, service="incidents")
    lift = await perms.client.post(
        f"/staff/subjects/{subject}/suspension/lift-requests", json={}, headers=perms.staff(perms.admin)
    )
    refused = await perms.approve(lift.json()["id"], subject)
    assert refused.json()["code"] == "approver_excluded"


async def test_staff_suspension_and_reporters(perms: Perms) -> None:
    subject = await perms.staff_member("risk_analyst")
    by_vault = await suspend(perms, subject, service="vault")
    assert by_vault.status_code == 403
    by_outsider = await perms.client.post(
        f"/staff/subjects/{subject}/suspension", json={"reason": "x"}, headers=perms.staff(new_subject())
    )
    assert by_outsider.status_code == 403
    by_admin = await perms.client.post(
        f"/staff/subjects/{subject}/suspension", json={"reason": "alert 17"}, headers=perms.staff(perms.admin)
    )
    assert by_admin.status_code == 200
    assert not (await perms.check(subject, "risk:modify"))["allowed"]


async def test_lift_without_suspension_is_not_found(perms: Perms) -> None:
    response = await perms.client.post(
        f"/staff/subjects/{new_subject()}/suspension/lift-requests", json={}, headers=perms.staff(perms.admin)
    )
    assert response.status_code == 404
    assert response.json()["code"] == "no_active_suspension"


async def test_concurrent_reports_make_one_suspension_and_one_status(perms: Perms) -> None:
    subject = await perms.staff_member("approver")
    suspensions = await asyncio.gather(*(suspend(perms, subject, service="risk") for _ in range(5)))
    assert all(r.status_code == 200 for r in suspensions)
    assert sum(r.json()["created"] for r in suspensions) == 1
    assert len({r.json()["id"] for r in suspensions}) == 1
    fresh = new_subject()
    statuses = await asyncio.gather(*(status(perms, fresh, "frozen") for _ in range(5)))
    assert all(r.status_code == 200 for r in statuses)
