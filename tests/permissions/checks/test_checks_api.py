"""The check API over HTTP: who may call it, reasons, batches, immediacy of changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kit.clock import MovableClock
from tests.permissions.conftest import Perms, new_subject, soon


async def test_internal_checks_need_a_service_token(perms: Perms) -> None:
    body = {"subject": perms.admin, "permission": "grant:approve"}
    assert (await perms.client.post("/internal/checks", json=body)).status_code == 401
    as_staff = await perms.client.post("/internal/checks", json=body, headers=perms.staff(perms.admin))
    assert as_staff.status_code == 403
    customer = perms.issuer.headers(kind="customer")
    assert (await perms.client.post("/internal/checks", json=body, headers=customer)).status_code == 403


async def test_forged_token_is_refused(perms: Perms) -> None:
    from tests.support.tokens import TestIssuer

    stranger = TestIssuer(kid=perms.issuer.kid)  # same key id, different key
    response = await perms.client.post(
        "/internal/checks",
        json={"subject": perms.admin, "permission": "grant:approve"},
        headers=stranger.headers(subject="vault", kind="service"),
    )
    assert response.status_code == 401


async def test_check_answers_with_the_grant_and_role(perms: Perms) -> None:
    subject = await perms.staff_member("auditor")
    allowed = await perms.check(subject, "audit:verify")
    assert allowed["allowed"] is True
    assert allowed["role"] == "auditor"
    assert allowed["grant_id"] in allowed["reason"]
    denied = await perms.check(subject, "vault:decrypt")
    assert denied == {
        "allowed": False,
        "reason": "no active grant gives vault:decrypt",
        "grant_id": None,
        "role": None,
    }


async def test_bad_check_input_is_a_problem(perms: Perms) -> None:
    response = await perms.client.post(
        "/internal/checks", json={"subject": "x", "permission": "not a permission"}, headers=perms.service()
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_batch_keeps_order(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    checks = [
        {"subject": subject, "permission": "funds:read"},
        {"subject": subject, "permission": "payment:check"},
        {"subject": new_subject(), "permission": "funds:read"},
        {"subject": subject, "permission": "approval:read"},
    ]
    response = await perms.client.post("/internal/checks/batch", json={"checks": checks}, headers=perms.service())
    assert response.status_code == 200
    assert [r["allowed"] for r in response.json()["results"]] == [True, False, False, True]


async def test_batch_over_the_limit_is_refused(perms: Perms) -> None:
    checks = [{"subject": "s", "permission": "doc:read"}] * 501
    response = await perms.client.post("/internal/checks/batch", json={"checks": checks}, headers=perms.service())
    assert response.status_code == 400


async def test_revocation_applies_to_the_next_check(perms: Perms) -> None:
    subject = new_subject()
    executed = await perms.grant(subject, "customer_manager")
    assert (await perms.check(subject, "account:modify"))["allowed"]
    grants = await perms.client.get(f"/staff/grants?subject={subject}", headers=perms.staff(perms.admin))
    grant_id = grants.json()[0]["id"]
    assert grants.json()[0]["approval_id"] == executed["id"]
    revoked = await perms.client.post(
        f"/staff/grants/{grant_id}/revoke", json={"reason": "moved"}, headers=perms.staff(perms.admin)
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    assert not (await perms.check(subject, "account:modify"))["allowed"]


async def test_expired_grant_stops_working(perms: Perms) -> None:
    subject = new_subject()
    await perms.train(subject)
    perms.store.clock = clock = MovableClock()
    expiry = datetime.now(UTC) + timedelta(hours=1)
    requested = await perms.request(subject, "teller", expires_at=expiry.isoformat())
    assert (await perms.approve(requested.json()["id"], perms.admin)).json()["state"] == "executed"
    assert (await perms.check(subject, "funds:read"))["allowed"]
    clock.advance(3600)
    after = await perms.check(subject, "funds:read")
    assert not after["allowed"]
    assert "expired" in after["reason"]


async def test_expiry_in_the_past_or_too_far_is_refused(perms: Perms) -> None:
    subject = new_subject()
    past = await perms.request(subject, "teller", expires_at=soon(-60))
    assert past.status_code == 400
    assert past.json()["code"] == "invalid_expiry"
    far = await perms.request(subject, "teller", expires_at=soon(400 * 86_400))
    assert far.json()["code"] == "invalid_expiry"


async def test_staff_explain_own_and_others(perms: Perms) -> None:
    subject = await perms.staff_member("teller")
    own = await perms.client.post(
        "/staff/checks", json={"subject": subject, "permission": "funds:read"}, headers=perms.staff(subject)
    )
    assert own.json()["allowed"] is True
    other = await perms.client.post(
        "/staff/checks", json={"subject": perms.admin, "permission": "grant:approve"}, headers=perms.staff(subject)
    )
    assert other.status_code == 403
    assert other.json()["code"] == "not_entitled"
    by_admin = await perms.client.post(
        "/staff/checks", json={"subject": subject, "permission": "funds:read"}, headers=perms.staff(perms.admin)
    )
    assert by_admin.json()["allowed"] is True


async def test_system_admin_maintains_and_reads_logs_but_no_funds_or_pii(perms: Perms) -> None:
    subject = await perms.staff_member("system_admin")
    assert (await perms.check(subject, "system:maintain"))["allowed"]
    assert (await perms.check(subject, "log:read"))["allowed"]
    for permission in ("funds:read", "vault:decrypt", "vault:read", "account:read"):
        decision = await perms.check(subject, permission)
        assert not decision["allowed"]
        assert "system_admin" in decision["reason"]


async def test_roles_show_inheritance_and_seeded_levels(perms: Perms) -> None:
    response = await perms.client.get("/staff/roles", headers=perms.staff(new_subject()))
    roles = {r["name"]: r for r in response.json()}
    assert roles["admin"]["inherits"] == ["manager", "user", "restricted_user"]
    assert "approval:read" in roles["admin"]["allows"]
    for bank_role in (
        "teller",
        "customer_manager",
        "approver",
        "compliance_officer",
        "auditor",
        "system_admin",
        "risk_analyst",
        "incident_responder",
    ):
        assert bank_role in roles
    assert "funds:read" in roles["system_admin"]["denies"]
    catalog = await perms.client.get("/staff/permissions", headers=perms.staff(new_subject()))
    assert {"name": "vault:decrypt", "high_risk": True}.items() <= next(
        p for p in catalog.json() if p["name"] == "vault:decrypt"
    ).items()


async def test_me_lists_own_grants(perms: Perms) -> None:
    subject = await perms.staff_member("auditor")
    response = await perms.client.get("/me/grants", headers=perms.staff(subject))
    assert [g["role"] for g in response.json()] == ["auditor"]


async def test_permissions_other_services_check_exist_in_the_catalog(perms: Perms) -> None:
    catalog = {
        p["name"] for p in (await perms.client.get("/staff/permissions", headers=perms.staff(perms.admin))).json()
    }
    used_elsewhere = {
        "staff_account:create",
        "account:read",
        "account:modify",
        "account:freeze",
        "account:unfreeze",
        "account:close",
        "login_log:read",
        "vault:read",
        "vault:decrypt",
        "vault:key_rotate",
        "audit:read",
        "audit:verify",
    }
    assert used_elsewhere <= catalog
    assert (await perms.check(perms.admin, "staff_account:create"))["allowed"]
    manager = await perms.staff_member("customer_manager")
    assert (await perms.check(manager, "account:close"))["allowed"]
