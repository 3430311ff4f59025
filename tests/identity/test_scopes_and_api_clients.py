"""Issue 13 item 9: each client holds only the scopes it needs, and identity's internal routes check them.
API clients for systems outside the suite (the bank's core system): registered by CLI and staff API,
secrets shown once and stored hashed, rotation and deactivation, audited. The notification and
risk-level routes other services call."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import uuid
from contextlib import redirect_stdout
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from services.identity import cli
from services.identity.config import SERVICE_CLIENT_SCOPES
from services.identity.login.geo import OfflineGeoLookup
from services.identity.login.signals import LoginContext, assess
from services.identity.models import Account, CustomerProfile, ServiceClient, audit_log
from services.identity.runtime import Runtime
from services.identity.tokens.clients import register_dev_clients
from tests.identity.fakes import FakePermissions
from tests.identity.staff_support import staff_token
from tests.identity.support import DEV_SECRET, bearer, register, service_token, signed_in, sink


async def _token(client: httpx.AsyncClient, client_id: str, secret: str) -> httpx.Response:
    return await client.post(
        "/public/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
    )


async def _actions(app: FastAPI, target: str) -> list[str]:
    entries = audit_log.entries
    async with app.state.database.sessionmaker() as session:
        rows = await session.scalars(select(entries.c.action).where(entries.c.target == target).order_by(entries.c.seq))
        return list(rows)


# --- scopes on identity's internal routes --------------------------------------------------------


async def test_the_gateway_client_can_read_the_revocation_feed_and_nothing_else(client: httpx.AsyncClient) -> None:
    """The gateway's secret sits in the internet-facing pod: stolen, it must not freeze or sign anyone out."""
    account_id, _, customer = await signed_in(client)
    gateway = bearer(await service_token(client, client_id="gateway"))
    keyed = {**gateway, "Idempotency-Key": f"attack-{uuid.uuid4().hex}"}
    attempts = [
        ("POST", f"/internal/accounts/{account_id}/freeze", {"reason": "x"}, keyed),
        ("POST", f"/internal/accounts/{account_id}/revoke-sessions", {"reason": "x"}, keyed),
        ("POST", f"/internal/accounts/{account_id}/notifications", {"event": "security_alert", "message": "x"}, keyed),
        ("PUT", f"/internal/accounts/{account_id}/risk-level", {"level": "low", "reason": "x"}, gateway),
        (
            "POST",
            "/internal/step-up/consume",
            {"account_id": account_id, "session_id": customer["session_id"], "action": "transfer.large"},
            gateway,
        ),
        ("POST", "/internal/login-log/purge", None, gateway),
    ]
    for method, path, body, headers in attempts:
        response = await client.request(method, path, json=body, headers=headers)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden"), (path, response.text)
    assert (await client.get("/internal/revocations", headers=gateway)).status_code == 200
    # The account is untouched: the customer's session still works.
    assert (await client.get("/me/account", headers=bearer(customer["access_token"]))).status_code == 200


async def test_each_route_needs_its_own_scope(client: httpx.AsyncClient) -> None:
    account_id, _ = await register(client)
    # risk may freeze and set risk levels but not purge; incidents may not set risk levels.
    risk = bearer(await service_token(client, client_id="risk"))
    incidents = bearer(await service_token(client, client_id="incidents"))
    identity = bearer(await service_token(client, client_id="identity"))
    assert (await client.post("/internal/login-log/purge", headers=risk)).status_code == 403
    assert (await client.post("/internal/login-log/purge", headers=identity)).status_code == 200
    level = {"level": "high", "reason": "x"}
    assert (
        await client.put(f"/internal/accounts/{account_id}/risk-level", json=level, headers=incidents)
    ).status_code == 403
    assert (
        await client.put(f"/internal/accounts/{account_id}/risk-level", json=level, headers=risk)
    ).status_code == 200
    # identity's own client cannot act on accounts through the internal routes.
    freeze = {**identity, "Idempotency-Key": f"k-{uuid.uuid4().hex}"}
    response = await client.post(f"/internal/accounts/{account_id}/freeze", json={"reason": "x"}, headers=freeze)
    assert response.status_code == 403


async def test_a_client_asks_only_for_scopes_it_holds(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/public/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "gateway",
            "client_secret": DEV_SECRET,
            "scope": "identity:accounts",
        },
    )
    assert (response.status_code, response.json()["code"]) == (400, "invalid_scope")
    granted = (await _token(client, "risk", DEV_SECRET)).json()["scope"].split()
    assert sorted(granted) == sorted(SERVICE_CLIENT_SCOPES["risk"])


async def test_an_existing_development_database_gets_the_scopes(identity_app: FastAPI) -> None:
    """Clients registered before scopes existed (no scopes, or too many) are set to the table at start-up."""
    runtime: Runtime = identity_app.state.identity
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(update(ServiceClient).where(ServiceClient.client_id == "gateway").values(scopes=[]))
        await session.execute(
            update(ServiceClient)
            .where(ServiceClient.client_id == "vault")
            .values(scopes=["identity:accounts", "identity:notify"])
        )
        await session.commit()
    async with identity_app.state.database.sessionmaker() as session:
        await register_dev_clients(session, runtime)
        await session.commit()
    async with identity_app.state.database.sessionmaker() as session:
        gateway = await session.get(ServiceClient, "gateway")
        vault = await session.get(ServiceClient, "vault")
    assert gateway is not None
    assert vault is not None
    assert gateway.scopes == ["identity:revocations"]
    assert sorted(vault.scopes) == sorted(SERVICE_CLIENT_SCOPES["vault"])
    assert "service_client.scopes_changed" in await _actions(identity_app, "gateway")


# --- API clients by staff API ----------------------------------------------------------------------


async def _maintainer(client: httpx.AsyncClient, app: FastAPI, permissions: FakePermissions, *grants: str) -> str:
    staff_id, token = await staff_token(client, app, f"ops-{uuid.uuid4().hex[:8]}")
    permissions.grant(staff_id, *grants)
    return token


async def test_api_clients_need_system_maintain(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    _, _, customer = await signed_in(client)
    body = {"client_id": f"core-{uuid.uuid4().hex[:6]}", "scopes": ["risk:score"]}
    as_customer = await client.post("/staff/api-clients", json=body, headers=bearer(customer["access_token"]))
    assert as_customer.status_code == 403
    no_grant = await _maintainer(client, identity_app, permissions, "account:read")
    denied = await client.post("/staff/api-clients", json=body, headers=bearer(no_grant))
    assert (denied.status_code, denied.json()["code"]) == (403, "permission_denied")
    service = bearer(await service_token(client, client_id="risk"))
    assert (await client.post("/staff/api-clients", json=body, headers=service)).status_code == 403


async def test_api_client_lifecycle_by_staff(
    client: httpx.AsyncClient, identity_app: FastAPI, permissions: FakePermissions
) -> None:
    staff = bearer(await _maintainer(client, identity_app, permissions, "system:maintain"))
    client_id = f"core-{uuid.uuid4().hex[:6]}"
    created = await client.post(
        "/staff/api-clients",
        json={"client_id": client_id, "scopes": ["risk:score", "identity:step_up"], "description": "core system"},
        headers=staff,
    )
    assert created.status_code == 201, created.text
    secret = created.json()["client_secret"]
    assert len(secret) >= 40
    # Stored hashed, never in clear; the list never shows a secret.
    async with identity_app.state.database.sessionmaker() as session:
        row = await session.get(ServiceClient, client_id)
    assert row is not None
    assert row.kind == "api"
    assert secret not in row.secret_hash
    assert row.secret_hash.startswith("$argon2id$")
    listed = await client.get("/staff/api-clients", headers=staff)
    assert client_id in listed.text
    assert secret not in listed.text
    token = await _token(client, client_id, secret)
    assert token.json()["scope"] == "identity:step_up risk:score"

    # Rotation: the old secret stops working at once.
    rotated = await client.post(f"/staff/api-clients/{client_id}/rotate", json={}, headers=staff)
    new_secret = rotated.json()["client_secret"]
    assert new_secret != secret
    assert (await _token(client, client_id, secret)).status_code == 401
    assert (await _token(client, client_id, new_secret)).status_code == 200

    # Deactivation: no more tokens.
    off = await client.post(f"/staff/api-clients/{client_id}/deactivate", json={"reason": "leaked"}, headers=staff)
    assert off.json()["active"] is False
    assert (await _token(client, client_id, new_secret)).status_code == 401
    assert await _actions(identity_app, client_id) == [
        "api_client.created",
        "api_client.secret_rotated",
        "api_client.deactivated",
    ]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"client_id": "gateway", "scopes": ["identity:revocations"]}, "reserved_client_id"),
        ({"client_id": "risk", "scopes": ["identity:accounts"]}, "reserved_client_id"),
        ({"client_id": "core-x1", "scopes": ["vault:decrypt"]}, "invalid_scope"),
    ],
)
async def test_staff_cannot_rekey_a_suite_service_or_invent_scopes(
    client: httpx.AsyncClient,
    identity_app: FastAPI,
    permissions: FakePermissions,
    body: dict[str, object],
    code: str,
) -> None:
    staff = bearer(await _maintainer(client, identity_app, permissions, "system:maintain"))
    response = await client.post("/staff/api-clients", json=body, headers=staff)
    assert (response.status_code, response.json()["code"]) == (400, code)
    assert (await _token(client, "gateway", DEV_SECRET)).status_code == 200
    # The suite's clients are not API clients: they cannot be rotated or deactivated here either.
    rotate = await client.post("/staff/api-clients/gateway/rotate", json={}, headers=staff)
    assert (rotate.status_code, rotate.json()["code"]) == (404, "client_not_found")


# --- API clients by CLI ----------------------------------------------------------------------------


def _cli(monkeypatch: pytest.MonkeyPatch, database_url: str, *argv: str) -> dict[str, object]:
    monkeypatch.setenv("IDENTITY_DATABASE_URL", database_url)
    monkeypatch.setenv("IDENTITY_ENVIRONMENT", "test")
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(list(argv)) == 0
    result: dict[str, object] = json.loads(out.getvalue())
    return result


async def test_cli_creates_rotates_and_deactivates_an_api_client(
    monkeypatch: pytest.MonkeyPatch, identity_db: str, client: httpx.AsyncClient
) -> None:
    name = f"core-{uuid.uuid4().hex[:6]}"
    scopes = ("--scope", "risk:score", "--scope", "risk:labels", "--scope", "identity:step_up")
    created = await asyncio.to_thread(_cli, monkeypatch, identity_db, "create-api-client", name, *scopes)
    assert created["created"] is True
    first = str(created["client_secret"])
    assert (await _token(client, name, first)).json()["scope"] == "identity:step_up risk:labels risk:score"
    # make run re-keys the development client on each start.
    again = await asyncio.to_thread(
        _cli, monkeypatch, identity_db, "create-api-client", name, *scopes, "--rotate-if-exists"
    )
    assert again["created"] is False
    assert (await _token(client, name, first)).status_code == 401
    assert (await _token(client, name, str(again["client_secret"]))).status_code == 200
    listed = await asyncio.to_thread(_cli, monkeypatch, identity_db, "list-api-clients")
    assert str(again["client_secret"]) not in json.dumps(listed)
    await asyncio.to_thread(_cli, monkeypatch, identity_db, "deactivate-client", name, "--reason", "retired")
    assert (await _token(client, name, str(again["client_secret"]))).status_code == 401


# --- notifications and risk levels from other services ---------------------------------------------


async def test_notifications_go_to_verified_channels_only_once_per_key(client: httpx.AsyncClient) -> None:
    account_id, _ = await register(client)  # the phone is verified, the email is not
    risk = bearer(await service_token(client, client_id="risk"))
    headers = {**risk, "Idempotency-Key": f"block-{uuid.uuid4().hex}"}
    body = {"event": "transaction_blocked", "message": "A transfer of 5,000.00 was blocked."}
    first = await client.post(f"/internal/accounts/{account_id}/notifications", json=body, headers=headers)
    assert (first.status_code, first.json()) == (202, {"queued": 1, "duplicate": False})
    again = await client.post(f"/internal/accounts/{account_id}/notifications", json=body, headers=headers)
    assert again.json() == {"queued": 0, "duplicate": True}
    sent = [m for m in await sink(client, account_id) if m["template"] == "event.transaction_blocked"]
    assert [m["channel"] for m in sent] == ["sms"]
    unknown = await client.post(f"/internal/accounts/{uuid.uuid4()}/notifications", json=body, headers=headers)
    assert unknown.status_code == 404
    no_key = await client.post(f"/internal/accounts/{account_id}/notifications", json=body, headers=risk)
    assert no_key.status_code == 422


async def test_an_unverified_contact_put_on_the_account_hears_nothing(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, _ = await register(client)
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(CustomerProfile)
            .where(CustomerProfile.account_id == uuid.UUID(account_id))
            .values(phone_verified_at=None, email_verified_at=datetime.now(UTC))
        )
        await session.commit()
    headers = {**bearer(await service_token(client, client_id="incidents")), "Idempotency-Key": uuid.uuid4().hex}
    body = {"event": "incident_update", "message": "We are looking into it."}
    sent = await client.post(f"/internal/accounts/{account_id}/notifications", json=body, headers=headers)
    assert sent.json()["queued"] == 1
    channels = [m["channel"] for m in await sink(client, account_id) if m["template"] == "event.incident_update"]
    assert channels == ["email"]


async def test_risk_level_is_stored_and_used_by_login(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, _ = await register(client)
    risk = bearer(await service_token(client, client_id="risk"))
    path = f"/internal/accounts/{account_id}/risk-level"
    bad = await client.put(path, json={"level": "normal", "reason": "x"}, headers=risk)
    assert bad.status_code == 422
    runtime: Runtime = identity_app.state.identity
    start, _ = runtime.settings.odd_hours_utc
    place = OfflineGeoLookup().locate("198.51.100.1")
    night = LoginContext(ip="198.51.100.1", place=place, device_id=None, user_agent=None)
    night = dataclasses.replace(night, now=night.now.replace(hour=start))
    decisions = {}
    for level in ("low", "medium"):
        answer = await client.put(path, json={"level": level, "reason": "model"}, headers=risk)
        assert answer.json() == {"account_id": account_id, "risk_level": level}
        async with identity_app.state.database.sessionmaker() as session:
            account = await session.get(Account, uuid.UUID(account_id))
            assert account is not None
            decisions[level] = (await assess(session, runtime, account, night)).decision
    # An odd hour alone lets a low-risk login through; a medium-risk one must pass a second factor.
    assert decisions == {"low": "allow", "medium": "challenge"}
    assert "account.risk_level_changed" in await _actions(identity_app, account_id)
