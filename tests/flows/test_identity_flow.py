"""Identity end to end through the gateway, as a mobile app and a staff tool would use it.

Real gateway, identity, permissions, vault and risk over real HTTP (identity keeps customers'
personal data in the vault). Only the outside
world is stood in for: the SMS/email provider is the development sink (the
notification channel with no webhook), read through identity's dev endpoint.
The gateway's login/OTP rate limits are raised for this test (it logs in more
often than a person would from one IP); they are the gateway's own subject.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from pydantic import SecretStr

from services.identity.accounts.service import create_staff
from services.identity.app import build_runtime
from services.identity.config import IdentitySettings
from tests.identity.support import PASSWORD, bearer, customer_data
from tests.support.codes import sent_code
from tests.support.database import TestDatabases
from tests.support.live import LiveSuite, live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

ID = "/v1/identity"
RELAXED = {"rate_limit_classes": {"login": "1000/minute", "otp": "1000/minute"}}


@pytest.fixture(scope="module")
async def flow_db(test_databases: TestDatabases) -> str:
    return await test_databases.clone("suite_identity_flow")


@pytest.fixture(scope="module")
async def suite(flow_db: str) -> AsyncIterator[LiveSuite]:
    async with live_suite(suite_factories(flow_db, overrides={"gateway": RELAXED})) as running:
        yield running


@pytest.fixture
async def app(suite: LiveSuite) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as client:
        yield client


async def _service_token(app: httpx.AsyncClient) -> str:
    response = await app.post(
        f"{ID}/public/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "risk",
            "client_secret": "dev-insecure-service-client-secret",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def _finish(app: httpx.AsyncClient, account_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    """Complete a login: tokens as they are, or the second-factor challenge with an SMS/email code."""
    if answer["status"] != "mfa_required":
        return answer
    channel = "sms" if "sms" in answer["methods"] else "email"
    sent = await app.post(
        f"{ID}/public/login/challenge/send", json={"challenge": answer["challenge"], "channel": channel}
    )
    assert sent.status_code == 200, sent.text
    body = {"challenge": answer["challenge"], "method": channel, "code": await sent_code(app, account_id, "code.login")}
    done = await app.post(f"{ID}/public/login/challenge/verify", json=body)
    assert done.status_code == 200, done.text
    result: dict[str, Any] = done.json()
    return result


async def _login(app: httpx.AsyncClient, identifier: str, password: str = PASSWORD) -> httpx.Response:
    return await app.post(
        f"{ID}/public/login", json={"identifier": identifier, "password": password, "device_id": "flow-phone"}
    )


async def _staff(url: str, username: str) -> tuple[str, str]:
    """A staff member created with the code the CLI runs; returns (id, one-time password)."""
    from fastapi import FastAPI

    from kit.db import create_database

    settings = IdentitySettings(environment="test", database_url=SecretStr(url))
    database = create_database(settings, pool_size=1)
    holder = FastAPI()
    holder.state.database = database
    holder.state.service_client = None
    runtime = build_runtime(holder, settings)
    try:
        async with database.sessionmaker() as session:
            account, password = await create_staff(
                session, runtime, username=username, email=f"{username}@bank.example", actor="cli"
            )
            await session.commit()
    finally:
        await database.dispose()
    return str(account.id), password


async def _staff_session(app: httpx.AsyncClient, staff_id: str, username: str, one_time_password: str) -> str:
    """First login: the second factor (email code), then the one-time password is replaced; then a session."""
    answer = await _finish(app, staff_id, (await _login(app, username, one_time_password)).json())
    assert answer["status"] == "password_change_required", answer
    done = await app.post(
        f"{ID}/public/login/password",
        json={"challenge": answer["challenge"], "new_password": f"Own-Password-{uuid.uuid4().hex[:8]}-!"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["acr"] == "aal2"
    return str(done.json()["access_token"])


async def _bootstrap_admin(url: str, subject: str) -> None:
    """What `python -m services.permissions.cli bootstrap-admin` does (the first admin, once)."""
    from kit.db import create_database
    from services.permissions.cli import bootstrap_admin
    from services.permissions.config import PermissionsSettings

    database = create_database(PermissionsSettings(environment="test", database_url=SecretStr(url)), pool_size=1)
    try:
        async with database.sessionmaker() as session:
            await bootstrap_admin(session, subject)
            await session.commit()
    finally:
        await database.dispose()


async def _grant_role(app: httpx.AsyncClient, subject_token: str, admin_token: str, role: str) -> None:
    """The officer asks for a role; the admin (a different person) approves it."""
    asked = await app.post(
        "/v1/permissions/staff/grant-requests",
        json={
            "subject": jwt.decode(subject_token, options={"verify_signature": False})["sub"],
            "role": role,
            "justification": "identity flow test",
        },
        headers=bearer(subject_token),
    )
    assert asked.status_code == 201, asked.text
    approved = await app.post(
        f"/v1/permissions/staff/approvals/{asked.json()['id']}/approve",
        json={"comment": "ok"},
        headers=bearer(admin_token),
    )
    assert approved.status_code == 200, approved.text


Crew = dict[str, tuple[str, str]]


async def _trained(app: httpx.AsyncClient, admin_token: str, subject: str) -> None:
    trained = await app.post(
        "/v1/permissions/staff/trainings",
        json={"subject": subject, "completed_at": datetime.now(UTC).isoformat()},
        headers=bearer(admin_token),
    )
    assert trained.status_code == 201, trained.text


@pytest.fixture(scope="module")
async def crew(suite: LiveSuite, flow_db: str) -> Crew:
    """Staff as a bank sets them up: the first admin (identity's CLI, then permissions' bootstrap), an
    officer (customer manager and auditor) and a compliance officer, their roles granted through approvals
    by the admin. Name -> (staff id, access token)."""
    suffix = uuid.uuid4().hex[:6]
    people: Crew = {}
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as app:
        for name in ("admin", "officer", "compliance"):
            username = f"{name}-{suffix}"
            staff_id, password = await _staff(flow_db, username)
            if name == "admin":
                await _bootstrap_admin(flow_db, staff_id)
            people[name] = (staff_id, await _staff_session(app, staff_id, username, password))
        admin_token = people["admin"][1]
        for name, roles in (("officer", ("customer_manager", "auditor")), ("compliance", ("compliance_officer",))):
            await _trained(app, admin_token, people[name][0])
            for role in roles:
                await _grant_role(app, people[name][1], admin_token, role)
    return people


async def _customer(app: httpx.AsyncClient) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A registered customer with a verified phone and a session."""
    data = customer_data()
    registered = await app.post(f"{ID}/public/register", json=data)
    assert registered.status_code == 201, registered.text
    account_id = str(registered.json()["account_id"])
    code = await sent_code(app, account_id, "code.verify:sms")
    verified = await app.post(
        f"{ID}/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": code}
    )
    assert verified.status_code == 200, verified.text
    tokens = await _finish(app, account_id, (await _login(app, data["phone"])).json())
    return account_id, data, tokens


async def test_customer_journey_through_the_gateway(app: httpx.AsyncClient, crew: Crew) -> None:
    # Register and verify the phone with the code "sent by SMS".
    data = customer_data()
    registered = await app.post(f"{ID}/public/register", json=data)
    assert registered.status_code == 201, registered.text
    account_id = registered.json()["account_id"]
    code = await sent_code(app, account_id, "code.verify:sms")
    verified = await app.post(
        f"{ID}/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": code}
    )
    assert verified.status_code == 200, verified.text

    # Log in (risk decides, or cannot answer and a second factor is asked: fail closed).
    tokens = await _finish(app, account_id, (await _login(app, data["phone"])).json())
    access = tokens["access_token"]

    # The access token verifies with PyJWT against the JWKS published through the gateway.
    jwks = (await app.get(f"{ID}/.well-known/jwks.json")).json()
    kid = jwt.get_unverified_header(access)["kid"]
    key = jwt.PyJWK(next(k for k in jwks["keys"] if k["kid"] == kid))
    claims = jwt.decode(access, key.key, algorithms=["EdDSA"], audience="bank-suite", issuer="bank-suite-identity")
    assert (claims["sub"], claims["kind"], claims["sid"]) == (account_id, "customer", tokens["session_id"])

    # Enrol TOTP with pyotp as the authenticator app: adding a factor takes the current password and a
    # step-up for mfa.change (unless the session just logged in at aal2).
    await app.post(f"{ID}/me/step-up/send", json={"action": "mfa.change", "channel": "sms"}, headers=bearer(access))
    step_up = {"action": "mfa.change", "method": "sms", "code": await sent_code(app, account_id, "code.step_up:mfa")}
    assert (await app.post(f"{ID}/me/step-up", json=step_up, headers=bearer(access))).status_code == 201
    enrol = await app.post(f"{ID}/me/mfa/totp", json={"current_password": PASSWORD}, headers=bearer(access))
    assert enrol.status_code == 201, enrol.text
    totp = pyotp.parse_uri(enrol.json()["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    confirmed = await app.post(f"{ID}/me/mfa/totp/confirm", json={"code": totp.now()}, headers=bearer(access))
    assert confirmed.status_code == 200, confirmed.text
    recovery_codes = confirmed.json()["recovery_codes"]
    assert len(recovery_codes) == 10

    # Log in with it; the same code again is a replay.
    challenge = (await _login(app, data["phone"])).json()
    assert challenge["status"] == "mfa_required"
    assert "otp" in challenge["methods"]
    code = totp.at(time.time() + 30)
    with_totp = await app.post(
        f"{ID}/public/login/challenge/verify", json={"challenge": challenge["challenge"], "method": "otp", "code": code}
    )
    assert with_totp.status_code == 200, with_totp.text
    assert with_totp.json()["acr"] == "aal2"
    session = with_totp.json()
    again = (await _login(app, data["phone"])).json()
    replay = await app.post(
        f"{ID}/public/login/challenge/verify", json={"challenge": again["challenge"], "method": "otp", "code": code}
    )
    assert replay.status_code == 400
    assert replay.json()["code"] == "invalid_code"

    # Refresh, then replay the old refresh token: the whole session is revoked.
    rotated = await app.post(f"{ID}/public/token/refresh", json={"refresh_token": session["refresh_token"]})
    assert rotated.status_code == 200, rotated.text
    stolen = await app.post(f"{ID}/public/token/refresh", json={"refresh_token": session["refresh_token"]})
    assert (stolen.status_code, stolen.json()["code"]) == (401, "refresh_token_reused")
    newest = rotated.json()
    assert (
        await app.post(f"{ID}/public/token/refresh", json={"refresh_token": newest["refresh_token"]})
    ).status_code == 401
    for _ in range(30):  # the gateway learns of the revocation through the feed within seconds
        if (await app.get(f"{ID}/me/sessions", headers=bearer(newest["access_token"]))).status_code == 401:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("the revoked session's access token still works")

    # Four wrong passwords lock the account; the right one then fails the same way.
    wrong = [await _login(app, data["phone"], "Wrong-password-1!") for _ in range(4)]
    assert {r.status_code for r in wrong} == {401}
    locked = await _login(app, data["phone"])
    assert (locked.status_code, locked.json()["code"]) == (401, "invalid_credentials")

    officer_token = crew["officer"][1]

    # The officer unlocks the customer, who signs in again (with a recovery code: the TOTP step is spent).
    unlocked = await app.post(
        f"{ID}/staff/accounts/{account_id}/unlock",
        json={"reason": "holder verified by phone"},
        headers=bearer(officer_token),
    )
    assert unlocked.status_code == 200, unlocked.text
    assert unlocked.json()["status"] == "active"

    # The officer sees the customer's real-name data masked: identity read it from the vault.
    viewed = await app.get(f"{ID}/staff/accounts/{account_id}", headers=bearer(officer_token))
    assert viewed.status_code == 200, viewed.text
    personal = viewed.json()["personal_data"]
    assert personal["phone"] == data["phone"][:3] + "****" + data["phone"][-4:]
    assert data["phone"] not in viewed.text
    assert data["id_number"] not in viewed.text
    # ...and the customer sees in the vault's access log that identity read the phone to text the codes
    # (delivery is asynchronous: the notification worker reads the number when it sends, within its poll).
    expected = {("service", "customer_notification"), ("service", "account_servicing")}
    purposes: set[tuple[str, str]] = set()
    for _ in range(100):
        reads = await app.get("/v1/vault/customer/access-log", headers=bearer(access))
        assert reads.status_code == 200, reads.text
        purposes = {(e["actor_kind"], e["purpose"]) for e in reads.json() if "phone" in e["fields"]}
        if expected <= purposes:
            break
        await asyncio.sleep(0.1)
    assert expected <= purposes

    retry = (await _login(app, data["phone"])).json()
    assert retry["status"] == "mfa_required"
    recovered = await app.post(
        f"{ID}/public/login/challenge/verify",
        json={"challenge": retry["challenge"], "method": "recovery", "code": recovery_codes[0]},
    )
    assert recovered.status_code == 200, recovered.text
    back = recovered.json()

    # ...and reads the login log: every attempt with its reason, no personal data.
    log = await app.get(f"{ID}/staff/login-log", params={"account_id": account_id}, headers=bearer(officer_token))
    assert log.status_code == 200, log.text
    reasons = [(e["result"], e["reason"]) for e in log.json()]
    assert ("failure", "wrong_password_locked") in reasons
    assert ("failure", "account_locked") in reasons
    assert reasons[0] == ("success", None)
    assert data["phone"] not in log.text

    # A customer token is no staff token.
    as_customer = await app.get(f"{ID}/staff/login-log", headers=bearer(back["access_token"]))
    assert as_customer.status_code in (401, 403)


async def test_freeze_and_unfreeze_through_a_maker_checker_approval(app: httpx.AsyncClient, crew: Crew) -> None:
    account_id, data, tokens = await _customer(app)
    officer, compliance = crew["officer"][1], crew["compliance"][1]

    frozen = await app.post(
        f"{ID}/staff/accounts/{account_id}/freeze", json={"reason": "fraud report"}, headers=bearer(officer)
    )
    assert frozen.json()["status"] == "frozen", frozen.text
    assert (await app.get(f"{ID}/me/account", headers=bearer(tokens["access_token"]))).status_code == 401
    assert (await _login(app, data["phone"])).json()["code"] == "invalid_credentials"

    # The officer (maker) asks; the compliance officer (checker) approves and executes with a step-up.
    payload = {"account_id": account_id}
    asked = await app.post(
        "/v1/permissions/staff/approvals",
        json={"operation": "account.unfreeze", "payload": payload, "comment": "case closed, customer verified"},
        headers=bearer(officer),
    )
    assert asked.status_code == 201, asked.text
    approval_id = asked.json()["id"]
    body = {"approval_id": approval_id, "reason": "case closed"}
    not_yet = await app.post(f"{ID}/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(compliance))
    assert not_yet.status_code == 403  # no step-up yet
    compliance_id = crew["compliance"][0]
    await app.post(
        f"{ID}/me/step-up/send", json={"action": "account.unfreeze", "channel": "email"}, headers=bearer(compliance)
    )
    code = await sent_code(app, compliance_id, "code.step_up:account.unfreeze")
    stepped = await app.post(
        f"{ID}/me/step-up",
        json={"action": "account.unfreeze", "method": "email", "code": code},
        headers=bearer(compliance),
    )
    assert stepped.status_code == 201, stepped.text
    unapproved = await app.post(f"{ID}/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(compliance))
    assert (unapproved.status_code, unapproved.json()["approval_code"]) == (409, "approval_not_approved")
    approved = await app.post(
        f"/v1/permissions/staff/approvals/{approval_id}/approve", json={"comment": "ok"}, headers=bearer(compliance)
    )
    assert approved.status_code == 200, approved.text
    # The maker cannot execute it (no account:unfreeze), the checker can, once.
    as_maker = await app.post(f"{ID}/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(officer))
    assert as_maker.status_code == 403
    done = await app.post(f"{ID}/staff/accounts/{account_id}/unfreeze", json=body, headers=bearer(compliance))
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    assert (await _login(app, data["phone"])).status_code == 200
