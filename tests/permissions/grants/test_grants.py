"""Change control of grants, from the attacker's side too: self-approval, SoD, training, escalation."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from services.permissions.models import audit_log
from tests.permissions.conftest import Perms, new_subject


async def test_grant_is_requested_approved_by_another_and_audited(perms: Perms) -> None:
    subject = new_subject()
    requested = await perms.request(subject, "auditor", justification="joins internal audit")
    assert requested.status_code == 201
    approval = requested.json()
    assert approval["state"] == "pending"
    assert approval["operation"] == "role.grant"
    assert approval["payload"] == {"subject": subject, "role": "auditor", "scope": None, "expires_at": None}
    assert not (await perms.check(subject, "audit:read"))["allowed"]
    done = await perms.approve(approval["id"], perms.admin, "ok")
    assert done.json()["state"] == "executed"
    assert [d["actor"] for d in done.json()["decisions"]] == [perms.admin]
    assert done.json()["comments"][0]["body"] == "joins internal audit"
    assert (await perms.check(subject, "audit:read"))["allowed"]
    grant = (await perms.client.get("/me/grants", headers=perms.staff(subject))).json()[0]
    assert (grant["requested_by"], grant["approved_by"]) == (subject, perms.admin)
    async with perms.sessionmaker() as session:
        rows = (
            await session.execute(
                select(audit_log.entries).where(audit_log.entries.c.target.in_([subject, approval["id"]]))
            )
        ).all()
    actions = [r.action for r in rows]
    assert actions == ["approval.created", "approval.approved", "grant.applied", "approval.executed"]
    # Free text stays out of the audit chain (it may name people).
    assert all("joins internal audit" not in str(r.detail) for r in rows)


async def test_requester_cannot_approve_own_request(perms: Perms) -> None:
    # Even an admin cannot approve a grant they asked for.
    colleague = new_subject()
    requested = await perms.request(colleague, "auditor", requester=perms.admin)
    assert requested.status_code == 201
    refused = await perms.approve(requested.json()["id"], perms.admin)
    assert refused.status_code == 403
    assert refused.json()["code"] == "self_approval"


async def test_nobody_approves_their_own_privileges(perms: Perms) -> None:
    second_admin = new_subject()
    await perms.grant(second_admin, "admin")
    # The first admin asks for a role for the second admin; the second admin may not approve it.
    requested = await perms.request(second_admin, "auditor", requester=perms.admin)
    refused = await perms.approve(requested.json()["id"], second_admin)
    assert refused.status_code == 403
    assert refused.json()["code"] == "approver_excluded"


async def test_approver_must_be_entitled(perms: Perms) -> None:
    manager = await perms.staff_member("manager")
    requested = await perms.request(new_subject(), "auditor")
    refused = await perms.approve(requested.json()["id"], manager)
    assert refused.status_code == 403
    assert refused.json()["code"] == "not_entitled"
    assert "grant:approve" in refused.json()["detail"]


async def test_requesting_for_someone_else_needs_grant_request(perms: Perms) -> None:
    outsider = new_subject()
    refused = await perms.request(new_subject(), "auditor", requester=outsider)
    assert refused.status_code == 403
    user = await perms.staff_member("user")
    assert (await perms.request(new_subject(), "auditor", requester=user)).status_code == 201


async def test_sod_conflict_refused_at_request(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    await perms.train(subject)
    refused = await perms.request(subject, "approver")
    assert refused.status_code == 409
    body = refused.json()
    assert body["code"] == "sod_conflict"
    assert body["conflicts"] == [
        {"role_a": "teller", "role_b": "approver", "reason": "the maker of a payment is never its checker"}
    ]


async def test_sod_conflict_refused_at_apply_when_it_arose_while_waiting(perms: Perms) -> None:
    subject = new_subject()
    await perms.train(subject)
    pending = await perms.request(subject, "approver")
    assert pending.status_code == 201
    await perms.grant(subject, "teller")
    refused = await perms.approve(pending.json()["id"], perms.admin)
    assert refused.status_code == 409
    assert refused.json()["code"] == "sod_conflict"
    still = await perms.client.get(f"/staff/approvals/{pending.json()['id']}", headers=perms.staff(perms.admin))
    assert still.json()["state"] == "pending"
    assert not (await perms.check(subject, "payment:check"))["allowed"]


async def test_high_risk_role_needs_current_training(perms: Perms) -> None:
    subject = new_subject()
    refused = await perms.request(subject, "compliance_officer")
    assert refused.status_code == 409
    assert refused.json()["code"] == "training_required"
    expired = await perms.train(subject, completed_at="2024-01-01T00:00:00Z", expires_at="2025-01-01T00:00:00Z")
    assert expired.status_code == 201
    assert (await perms.request(subject, "compliance_officer")).json()["code"] == "training_required"
    assert (await perms.train(subject)).status_code == 201
    assert (await perms.request(subject, "compliance_officer")).status_code == 201


async def test_training_is_recorded_by_someone_else_and_by_entitled_staff(perms: Perms) -> None:
    subject = new_subject()
    own = await perms.client.post(
        "/staff/trainings",
        json={"subject": perms.admin, "completed_at": "2026-01-01T00:00:00Z"},
        headers=perms.staff(perms.admin),
    )
    assert own.json()["code"] == "self_service_forbidden"
    outsider = await perms.client.post(
        "/staff/trainings",
        json={"subject": subject, "completed_at": "2026-01-01T00:00:00Z"},
        headers=perms.staff(new_subject()),
    )
    assert outsider.status_code == 403
    assert outsider.json()["code"] == "permission_denied"
    backwards = await perms.train(subject, expires_at="2020-01-01T00:00:00Z")
    assert backwards.json()["code"] == "invalid_training"


async def test_duplicate_grant_refused(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    again = await perms.request(subject, "teller")
    assert again.status_code == 409
    assert again.json()["code"] == "already_granted"
    assert (await perms.request(subject, "teller", scope="branch:0101")).status_code == 201


async def test_unknown_role_and_bad_subject(perms: Perms) -> None:
    unknown = await perms.request(new_subject(), "overlord")
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_role"
    bad = await perms.client.post(
        "/staff/grant-requests", json={"subject": "not-a-uuid", "role": "teller"}, headers=perms.staff(new_subject())
    )
    assert bad.status_code == 422


async def test_revocation_needs_grant_revoke(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    grant_id = (await perms.client.get("/me/grants", headers=perms.staff(subject))).json()[0]["id"]
    refused = await perms.client.post(
        f"/staff/grants/{grant_id}/revoke", json={"reason": "x"}, headers=perms.staff(subject)
    )
    assert refused.status_code == 403


async def test_coexisting_sod_conflict_is_reported(perms: Perms) -> None:
    subject = await perms.staff_member("risk_analyst", "customer_manager")
    added = await perms.client.post(
        "/staff/sod-rules",
        json={"role_a": "risk_analyst", "role_b": "customer_manager", "reason": "test rule"},
        headers=perms.staff(perms.admin),
    )
    assert added.status_code == 201
    report = await perms.client.get("/staff/reports/over-privilege", headers=perms.staff(perms.admin))
    assert report.status_code == 200
    conflicts = [c for c in report.json()["sod_conflicts"] if c["subject"] == subject]
    assert conflicts == [
        {"subject": subject, "role_a": "risk_analyst", "role_b": "customer_manager", "reason": "test rule"}
    ]
    # The bootstrapped admin never had training: reported, not hidden.
    assert any(g["subject"] == perms.admin for g in report.json()["grants_without_training"])


async def test_sod_rules_need_role_modify(perms: Perms) -> None:
    refused = await perms.client.post(
        "/staff/sod-rules",
        json={"role_a": "teller", "role_b": "auditor", "reason": "x"},
        headers=perms.staff(await perms.staff_member("manager")),
    )
    assert refused.status_code == 403
    rules = await perms.client.get("/staff/sod-rules", headers=perms.staff(new_subject()))
    assert any(r["role_a"] == "system_admin" and r["role_b"] == "auditor" for r in rules.json())


async def test_concurrent_approvals_cannot_combine_exclusive_roles(perms: Perms) -> None:
    other_admin = await perms.staff_member("admin")
    subject = new_subject()
    await perms.train(subject)
    maker = await perms.request(subject, "teller")
    checker = await perms.request(subject, "approver")
    results = await asyncio.gather(
        perms.approve(maker.json()["id"], perms.admin), perms.approve(checker.json()["id"], other_admin)
    )
    assert sorted(r.status_code for r in results) == [200, 409]
    assert next(r for r in results if r.status_code == 409).json()["code"] == "sod_conflict"
    roles = [g["role"] for g in (await perms.client.get("/me/grants", headers=perms.staff(subject))).json()]
    assert len(roles) == 1
