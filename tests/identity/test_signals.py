"""Login signals, per-account restrictions, and the risk service's decision (fail closed)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from kit.audit import MAC_FIELD, signing_key_from_secret
from kit.http import ServiceClient
from services.identity.login.geo import OfflineGeoLookup
from services.identity.login.signals import LoginContext, compute_signals
from services.identity.models import Account, LoginAttempt, audit_log
from services.identity.runtime import Runtime
from tests.identity.support import latest_code, login, register, sink

SHANGHAI = {"x-forwarded-for": "198.51.100.20"}
NEW_YORK = {"x-forwarded-for": "203.0.113.9"}


@pytest.fixture
def risk_answers(identity_app: FastAPI) -> Iterator[Callable[[httpx.Response | None], list[dict[str, object]]]]:
    """Point identity's risk calls at a stand-in (service-level test; flow tests use the real risk service)."""
    runtime: Runtime = identity_app.state.identity
    original = runtime.settings, runtime.client
    calls: list[dict[str, object]] = []

    def install(answer: httpx.Response | None) -> list[dict[str, object]]:
        def handler(request: httpx.Request) -> httpx.Response:
            calls.append(json.loads(request.content))
            if answer is None:
                raise httpx.ConnectError("risk is down")
            return answer

        runtime.settings = runtime.settings.model_copy(update={"risk_scoring_enabled": True})
        runtime.client = ServiceClient("http://gateway.test", retries=0, transport=httpx.MockTransport(handler))
        return calls

    yield install
    runtime.settings, runtime.client = original


async def _login(
    client: httpx.AsyncClient, data: dict[str, object], device: str, headers: dict[str, str]
) -> httpx.Response:
    return await client.post(
        "/public/login",
        json={"identifier": data["phone"], "password": data["password"], "device_id": device},
        headers=headers,
    )


async def test_risk_not_answering_means_a_second_factor(
    client: httpx.AsyncClient, risk_answers: Callable[[httpx.Response | None], list[dict[str, object]]]
) -> None:
    _, data = await register(client)
    calls = risk_answers(None)
    response = await _login(client, data, "dev-a", SHANGHAI)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["reasons"]) == ("mfa_required", ["risk_unavailable"])
    assert calls
    assert calls[0]["region"] == "CN-SH"


async def test_risk_garbage_is_treated_as_no_answer(
    client: httpx.AsyncClient, risk_answers: Callable[[httpx.Response | None], list[dict[str, object]]]
) -> None:
    _, data = await register(client)
    risk_answers(httpx.Response(200, json={"decision": "yes please"}))
    assert (await _login(client, data, "dev-a", SHANGHAI)).json()["status"] == "mfa_required"


async def test_risk_allow_and_deny(
    client: httpx.AsyncClient, risk_answers: Callable[[httpx.Response | None], list[dict[str, object]]]
) -> None:
    _, data = await register(client)
    risk_answers(httpx.Response(200, json={"decision": "allow", "reasons": []}))
    assert (await _login(client, data, "dev-a", SHANGHAI)).json()["status"] == "authenticated"
    risk_answers(httpx.Response(200, json={"decision": "deny", "reasons": ["blocklisted_ip"]}))
    denied = await _login(client, data, "dev-a", SHANGHAI)
    assert denied.status_code == 403
    assert denied.json()["code"] == "login_denied"
    risk_answers(httpx.Response(200, json={"decision": "challenge", "reasons": ["velocity"]}))
    assert (await _login(client, data, "dev-a", SHANGHAI)).json()["reasons"] == ["velocity"]


async def test_a_reason_risk_repeats_is_said_once(
    client: httpx.AsyncClient, risk_answers: Callable[[httpx.Response | None], list[dict[str, object]]]
) -> None:
    _, data = await register(client)
    assert (await _login(client, data, "phone-1", SHANGHAI)).json()["status"] == "authenticated"
    risk_answers(httpx.Response(200, json={"decision": "challenge", "reasons": ["new_device", "velocity"]}))
    body = (await _login(client, data, "tablet-2", SHANGHAI)).json()
    assert (body["status"], body["reasons"]) == ("mfa_required", ["new_device", "velocity"])


async def login_audits(app: FastAPI, account_id: str) -> list[tuple[str | None, dict[str, object]]]:
    """(session id, detail) of the account's ``login.succeeded`` audit entries, oldest first."""
    entries = audit_log.entries
    async with app.state.database.sessionmaker() as session:
        rows = await session.execute(
            select(entries.c.target, entries.c.detail)
            .where(entries.c.actor == account_id, entries.c.action == "login.succeeded")
            .order_by(entries.c.seq)
        )
    # The entry's MAC (kit/audit.py, `_mac`) is integrity data, not what the entry says.
    return [(target, {k: v for k, v in detail.items() if k != MAC_FIELD}) for target, detail in rows]


async def test_new_device_is_challenged_and_the_customer_told(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    """Also what the audit entries of the logins say, each appended in the session's own statement: the
    device known new or not from the account's locked row (a password-only login) or from the challenge's
    load (the one finished with a second factor)."""
    account_id, data = await register(client)
    first = (await _login(client, data, "phone-1", SHANGHAI)).json()
    assert first["status"] == "authenticated"
    challenged = (await _login(client, data, "tablet-2", SHANGHAI)).json()
    assert (challenged["status"], challenged["reasons"]) == ("mfa_required", ["new_device"])
    await client.post("/public/login/challenge/send", json={"challenge": challenged["challenge"], "channel": "sms"})
    code = await latest_code(client, account_id, "code.login")
    done = await client.post(
        "/public/login/challenge/verify", json={"challenge": challenged["challenge"], "method": "sms", "code": code}
    )
    assert done.status_code == 200
    assert any(m["template"] == "alert.new_device" for m in await sink(client, account_id))
    # Known now: no challenge the next time.
    third = (await _login(client, data, "tablet-2", SHANGHAI)).json()
    assert third["status"] == "authenticated"
    assert await login_audits(identity_app, account_id) == [
        (first["session_id"], {"amr": ["pwd"], "acr": "aal1", "new_device": False}),
        (done.json()["session_id"], {"amr": ["pwd", "sms"], "acr": "aal2", "new_device": True}),
        (third["session_id"], {"amr": ["pwd"], "acr": "aal1", "new_device": False}),
    ]
    key = signing_key_from_secret(identity_app.state.settings.audit_signing_key.get_secret_value())
    async with identity_app.state.database.sessionmaker() as session:
        assert (await audit_log.verify(session, key.public_key())).ok


async def test_new_region_and_impossible_travel(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data = await register(client)
    assert (await _login(client, data, "phone-1", SHANGHAI)).json()["status"] == "authenticated"
    far = (await _login(client, data, "phone-1", NEW_YORK)).json()
    assert far["status"] == "mfa_required"
    assert set(far["reasons"]) == {"new_region", "impossible_travel"}
    async with identity_app.state.database.sessionmaker() as session:
        last = await session.scalar(
            select(LoginAttempt)
            .where(LoginAttempt.account_id == uuid.UUID(account_id))
            .order_by(LoginAttempt.id.desc())
            .limit(1)
        )
    assert last is not None
    assert {"new_region", "impossible_travel"} <= set(last.signals)


async def test_odd_hour_and_recent_failures_are_signals(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data = await register(client)
    for _ in range(3):
        await login(client, data["phone"], "Wrong-password-1!")
    runtime: Runtime = identity_app.state.identity
    async with identity_app.state.database.sessionmaker() as session:
        account = await session.get(Account, uuid.UUID(account_id))
        assert account is not None
        place = OfflineGeoLookup().locate("198.51.100.1")
        now = LoginContext(ip="198.51.100.1", place=place, device_id=None, user_agent=None)
        assert "recent_failures" in await compute_signals(session, runtime, account, now)
        start, _ = runtime.settings.odd_hours_utc
        night = dataclasses.replace(now, now=now.now.replace(hour=start))
        noon = dataclasses.replace(now, now=now.now.replace(hour=(start + 12) % 24))
        assert "odd_hour" in await compute_signals(session, runtime, account, night)
        assert "odd_hour" not in await compute_signals(session, runtime, account, noon)


async def test_high_risk_account_restrictions(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data = await register(client)
    assert (await _login(client, data, "phone-1", SHANGHAI)).json()["status"] == "authenticated"
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(Account)
            .where(Account.id == uuid.UUID(account_id))
            .values(risk_level="high", home_region="CN-SH", restrictions={"on_violation": "deny"})
        )
        await session.commit()
    assert (await _login(client, data, "phone-1", SHANGHAI)).json()["status"] == "authenticated"
    unknown_device = await _login(client, data, "laptop-9", SHANGHAI)
    assert unknown_device.status_code == 403
    elsewhere = await _login(client, data, "phone-1", {"x-forwarded-for": "192.0.2.44"})
    assert elsewhere.status_code == 403
