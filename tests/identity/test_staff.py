"""Staff operations (permission-checked), lifecycle transitions, service calls, the login log."""

from __future__ import annotations

import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from kit.outbox import OutboxWorker
from kit.permissions import payload_hash
from services.identity.models import Account, CustomerProfile, outbox
from services.identity.runtime import Runtime
from services.identity.vault import Purpose
from tests.identity.fakes import FakePermissions
from tests.identity.inprocess import Wiring
from tests.identity.staff_support import RECOVERY_CODES, staff_token
from tests.identity.support import PASSWORD, bearer, login, register, service_token, signed_in, sink


async def _officer(client: httpx.AsyncClient, app: FastAPI, permissions: FakePermissions, *grants: str) -> str:
    staff_id, token = await staff_token(client, app, f"officer-{uuid.uuid4().hex[:8]}")
    permissions.grant(staff_id, *grants)
    OFFICERS[token] = staff_id
    return token


OFFICERS: dict[str, str] = {}


async def test_staff_routes_need_a_staff_token_and_the_permission(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, _, customer = await signed_in(client)
    as_customer = await client.post(
        f"/staff/accounts/{account_id}/unlock", json={"reason": "x"}, headers=bearer(customer["access_token"])
    )
    assert as_customer.status_code == 403
    token = await _officer(client, identity_app, permissions)  # no grants
    denied = await client.post(f"/staff/accounts/{account_id}/unlock", json={"reason": "x"}, headers=bearer(token))
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")


async def test_unlock_lifts_the_lock(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data = await register(client)
    for _ in range(4):
        await login(client, data["phone"], "Wrong-password-1!")
    assert (await login(client, data["phone"])).status_code == 401
    token = await _officer(client, identity_app, permissions, "account:modify", "account:read")
    view = await client.get(f"/staff/accounts/{account_id}", headers=bearer(token))
    assert view.json()["status"] == "locked"
    # Staff see the customer's data masked by the vault, never in clear.
    personal = view.json()["personal_data"]
    assert personal["phone"] == data["phone"][:3] + "****" + data["phone"][-4:]
    assert personal["name"] == data["name"][0] + "*" * (len(data["name"]) - 1)
    assert personal["national_id"] == data["id_number"][:3] + "*" * 11 + data["id_number"][-4:]
    assert personal["email"] == data["email"][0] + "***@example.com"
    assert (personal["phone_verified"], personal["email_verified"]) == (True, False)
    for clear in (data["phone"], data["id_number"], data["email"], data["name"]):
        assert clear not in view.text
    unlocked = await client.post(
        f"/staff/accounts/{account_id}/unlock", json={"reason": "holder verified"}, headers=bearer(token)
    )
    assert unlocked.json()["status"] == "active"
    assert (await login(client, data["phone"])).status_code == 200


async def test_freeze_revokes_sessions_tells_permissions_and_unfreeze_needs_an_approval(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data, customer = await signed_in(client)
    token = await _officer(client, identity_app, permissions, "account:freeze", "account:unfreeze")
    frozen = await client.post(
        f"/staff/accounts/{account_id}/freeze", json={"reason": "fraud report"}, headers=bearer(token)
    )
    assert frozen.json()["status"] == "frozen"
    assert (await client.get("/me/account", headers=bearer(customer["access_token"]))).status_code == 401
    assert (await login(client, data["phone"])).status_code == 401
    async with identity_app.state.database.sessionmaker() as session:
        rows = (await session.execute(select(outbox.messages).where(outbox.messages.c.target == "permissions"))).all()
    assert any(r.path.endswith(f"/subjects/{account_id}/status") and r.payload["status"] == "frozen" for r in rows)

    approval = str(uuid.uuid4())
    body = {"approval_id": approval, "reason": "case closed"}
    no_step_up = await client.post(f"/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(token))
    assert (no_step_up.status_code, no_step_up.json()["code"]) == (403, "step_up_required")
    codes = RECOVERY_CODES[OFFICERS[token]]
    # One step-up serves the three attempts below: a refused approval rolls its use back.
    stepped = await client.post(
        "/me/step-up",
        json={"action": "account.unfreeze", "method": "recovery", "code": codes[0]},
        headers=bearer(token),
    )
    assert stepped.status_code == 201
    unapproved = await client.post(f"/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(token))
    assert (unapproved.status_code, unapproved.json()["approval_code"]) == (409, "approval_not_approved")
    permissions.approved[approval] = ("account.unfreeze", payload_hash({"account_id": str(uuid.uuid4())}))
    mismatch = await client.post(f"/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(token))
    assert mismatch.json()["approval_code"] == "approval_payload_mismatch"
    permissions.approved[approval] = ("account.unfreeze", payload_hash({"account_id": account_id}))
    done = await client.post(f"/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(token))
    assert done.json()["status"] == "active", done.text
    assert (await login(client, data["phone"])).status_code == 200


async def test_close_destroys_personal_data(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data, _ = await signed_in(client)
    token = await _officer(client, identity_app, permissions, "account:close", "account:read")
    runtime: Runtime = identity_app.state.identity
    approval = str(uuid.uuid4())  # closing is a maker-checker approval (issue 13 item 7)
    permissions.approved[approval] = ("account.close", payload_hash({"account_id": account_id}))
    closed = await client.post(
        f"/staff/accounts/{account_id}/close",
        json={"reason": "customer request", "approval_id": approval},
        headers=bearer(token),
    )
    assert closed.json()["status"] == "closed"
    async with identity_app.state.database.sessionmaker() as session:
        account = await session.get(Account, uuid.UUID(account_id))
        profile = await session.get(CustomerProfile, uuid.UUID(account_id))
        shred = (
            await session.execute(
                select(outbox.messages).where(
                    outbox.messages.c.target == "vault", outbox.messages.c.path.endswith(account_id)
                )
            )
        ).one()
    assert account is not None
    assert profile is not None
    assert profile.vault_record_id is not None
    assert (account.password_hash, account.phone_index, account.email_index, account.national_id_index) == (None,) * 4
    assert (shred.method, shred.path) == ("DELETE", f"/v1/vault/internal/subjects/{account_id}")
    # Until the outbox delivers, the vault still holds the data; then it is gone for good.
    assert await runtime.vault.read(profile.vault_record_id, ["name"], Purpose.account_servicing, unmasked=False)
    worker: OutboxWorker = identity_app.state.outbox_worker
    await worker.deliver_due()
    async with identity_app.state.database.sessionmaker() as session:
        status = await session.scalar(select(outbox.messages.c.status).where(outbox.messages.c.id == shred.id))
    assert status == "delivered"
    wiring: Wiring = identity_app.state.test_wiring
    gone = await wiring.identity_client.request(
        "POST",
        f"/v1/vault/internal/records/{profile.vault_record_id}/reads",
        json={"purpose": "account_servicing", "fields": ["phone"], "unmasked": True},
    )
    assert (gone.status_code, gone.json()["code"]) == (410, "subject_shredded")
    again_shredded = await wiring.identity_client.request("DELETE", shred.path)  # a redelivery changes nothing
    assert (again_shredded.status_code, again_shredded.json()["shredded"]) == (200, False)
    view = await client.get(f"/staff/accounts/{account_id}", headers=bearer(token))
    assert (view.json()["status"], view.json()["personal_data"]) == ("closed", None)
    assert (await login(client, data["phone"])).status_code == 401
    again = await client.post(
        f"/staff/accounts/{account_id}/close",
        json={"reason": "again", "approval_id": str(uuid.uuid4())},
        headers=bearer(token),
    )
    assert again.status_code == 409


async def test_staff_reset_sends_a_temporary_password_staff_never_see(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data, customer = await signed_in(client)
    token = await _officer(client, identity_app, permissions, "account:modify")
    reset = await client.post(
        f"/staff/accounts/{account_id}/password-reset", json={"reason": "forgot"}, headers=bearer(token)
    )
    assert reset.status_code == 200
    assert reset.json()["must_change_password"] is True
    assert (await client.get("/me/account", headers=bearer(customer["access_token"]))).status_code == 401
    message = next(m for m in await sink(client, account_id) if m["template"] == "password.temporary")
    temporary = message["body"].split("password is ")[1].split(". ")[0]
    assert temporary not in reset.text
    forced = (await login(client, data["phone"], temporary)).json()
    assert forced["status"] == "password_change_required"
    assert "access_token" not in {k for k, v in forced.items() if v}
    changed = await client.post(
        "/public/login/password", json={"challenge": forced["challenge"], "new_password": "Brand-New-Pass-77!"}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["status"] == "authenticated"
    assert (await login(client, data["phone"], PASSWORD)).status_code == 401
    assert (await login(client, data["phone"], temporary)).status_code == 401


async def test_staff_create_staff_and_first_login_must_change_password(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    token = await _officer(client, identity_app, permissions, "staff_account:create")
    created = await client.post("/staff/accounts", json={"username": "new.teller"}, headers=bearer(token))
    assert created.status_code == 201
    body = created.json()
    first = (await login(client, "new.teller", body["one_time_password"])).json()
    assert first["status"] == "password_change_required"
    # The challenge sets a password and nothing else; a weak one is refused and the challenge stays usable.
    as_factor = await client.post(
        "/public/login/challenge/verify", json={"challenge": first["challenge"], "method": "otp", "code": "123456"}
    )
    assert (as_factor.status_code, as_factor.json()["code"]) == (401, "invalid_challenge")
    weak = await client.post("/public/login/password", json={"challenge": first["challenge"], "new_password": "teller"})
    assert (weak.status_code, weak.json()["code"]) == (400, "weak_password")
    strong = await client.post(
        "/public/login/password", json={"challenge": first["challenge"], "new_password": "Teller-Desk-2026-Lamp!"}
    )
    assert strong.json()["status"] == "authenticated", strong.text
    again = await client.post(
        "/public/login/password", json={"challenge": first["challenge"], "new_password": "Teller-Desk-2026-Lamp!2"}
    )
    assert again.status_code == 401
    duplicate = await client.post("/staff/accounts", json={"username": "new.teller"}, headers=bearer(token))
    assert duplicate.status_code == 409


async def test_login_log_for_entitled_staff(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    account_id, data = await register(client)
    await login(client, data["phone"], "Wrong-password-1!")
    await login(client, data["phone"])
    token = await _officer(client, identity_app, permissions, "login_log:read")
    log = await client.get("/staff/login-log", params={"account_id": account_id}, headers=bearer(token))
    assert log.status_code == 200
    entries = log.json()
    assert [(e["result"], e["reason"]) for e in entries] == [("success", None), ("failure", "wrong_password")]
    failures = await client.get(
        "/staff/login-log", params={"account_id": account_id, "result": "failure"}, headers=bearer(token)
    )
    assert len(failures.json()) == 1
    assert data["phone"] not in log.text


async def test_service_freeze_is_idempotent(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, _, customer = await signed_in(client)
    token = await service_token(client, client_id="risk")
    headers = {**bearer(token), "Idempotency-Key": f"risk-freeze-{account_id}"}
    first = await client.post(f"/internal/accounts/{account_id}/freeze", json={"reason": "score 93"}, headers=headers)
    again = await client.post(f"/internal/accounts/{account_id}/freeze", json={"reason": "score 93"}, headers=headers)
    assert first.json()["status"] == again.json()["status"] == "frozen"
    assert (await client.get("/me/account", headers=bearer(customer["access_token"]))).status_code == 401
    as_customer = await client.post(
        f"/internal/accounts/{account_id}/freeze",
        json={"reason": "x"},
        headers={**bearer(customer["access_token"]), "Idempotency-Key": "k" * 10},
    )
    assert as_customer.status_code == 403


async def test_customer_closes_own_account_with_step_up(client: httpx.AsyncClient) -> None:
    from tests.identity.support import latest_code

    account_id, data, customer = await signed_in(client)
    token = customer["access_token"]
    without = await client.post("/customer/account/close", json={"reason": "moving"}, headers=bearer(token))
    assert without.status_code == 403
    await client.post("/me/step-up/send", json={"action": "account.close", "channel": "email"}, headers=bearer(token))
    code = await latest_code(client, account_id, "code.step_up:account.close")
    await client.post(
        "/me/step-up", json={"action": "account.close", "method": "email", "code": code}, headers=bearer(token)
    )
    closed = await client.post("/customer/account/close", json={"reason": "moving"}, headers=bearer(token))
    assert closed.json()["status"] == "closed"
    assert (await login(client, data["phone"])).status_code == 401


async def test_staff_routes_need_a_second_factor(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    from tests.identity.staff_support import first_login, make_staff

    username = f"pwd-only-{uuid.uuid4().hex[:6]}"
    staff_id, password = await make_staff(identity_app, username)
    permissions.grant(staff_id, "login_log:read")
    token = (await first_login(client, username, password))["access_token"]
    response = await client.get("/staff/login-log", headers=bearer(token))
    assert (response.status_code, response.json()["code"]) == (403, "step_up_required")
