"""The operator CLI (first admin, key rotation, client registration) and the login-log retention."""

from __future__ import annotations

import io
import json
import uuid
from contextlib import redirect_stdout
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from services.identity import cli
from services.identity.models import LoginAttempt, LoginChallenge, SigningKey
from services.identity.runtime import Runtime
from tests.identity.support import bearer, login, register, service_token


def _run(monkeypatch: pytest.MonkeyPatch, database_url: str, *argv: str) -> dict[str, object]:
    monkeypatch.setenv("IDENTITY_DATABASE_URL", database_url)
    monkeypatch.setenv("IDENTITY_ENVIRONMENT", "test")
    out = io.StringIO()
    with redirect_stdout(out):
        assert cli.main(list(argv)) == 0
    result: dict[str, object] = json.loads(out.getvalue())
    return result


async def test_create_admin_prints_a_one_time_password_once(
    monkeypatch: pytest.MonkeyPatch, identity_db: str, client: httpx.AsyncClient
) -> None:
    import asyncio

    name = f"admin-{uuid.uuid4().hex[:6]}"
    created = await asyncio.to_thread(_run, monkeypatch, identity_db, "create-admin", "--username", name)
    assert created["created"] is True
    again = await asyncio.to_thread(_run, monkeypatch, identity_db, "create-admin", "--username", name)
    assert again == {"created": False, "username": name, "id": created["id"]}
    first = (await login(client, name, str(created["one_time_password"]))).json()
    assert first["status"] == "password_change_required"


async def test_rotate_keys_command(monkeypatch: pytest.MonkeyPatch, identity_db: str, identity_app: FastAPI) -> None:
    import asyncio

    rotated = await asyncio.to_thread(_run, monkeypatch, identity_db, "rotate-keys")
    async with identity_app.state.database.sessionmaker() as session:
        live = (await session.scalars(select(SigningKey).where(SigningKey.superseded_at.is_(None)))).all()
    assert [k.kid for k in live] == [rotated["new_kid"]]


async def test_register_client_reads_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, identity_db: str, client: httpx.AsyncClient
) -> None:
    import asyncio

    monkeypatch.setenv("IDENTITY_NEW_CLIENT_SECRET", "a-long-enough-client-secret")
    await asyncio.to_thread(
        _run, monkeypatch, identity_db, "register-client", "core-banking", "--scope", "transfer:score"
    )
    response = await client.post(
        "/public/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "core-banking",
            "client_secret": "a-long-enough-client-secret",
        },
    )
    assert response.json()["scope"] == "transfer:score"


async def test_purge_keeps_the_retention_window(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    runtime: Runtime = identity_app.state.identity
    retention = runtime.settings.login_log_retention_days
    now = datetime.now(UTC)
    marker = uuid.uuid4().hex
    async with identity_app.state.database.sessionmaker() as session:
        for age in (retention + 1, retention - 1, 1):
            session.add(
                LoginAttempt(
                    occurred_at=now - timedelta(days=age),
                    identifier_index=marker,
                    method="pwd",
                    result="failure",
                    reason="test",
                    failed_count=0,
                    signals=[],
                )
            )
        await session.commit()
    token = await service_token(client, client_id="identity")
    purged = await client.post("/internal/login-log/purge", headers=bearer(token))
    assert purged.json()["deleted"] >= 1
    async with identity_app.state.database.sessionmaker() as session:
        left = await session.scalar(select(func.count()).where(LoginAttempt.identifier_index == marker))
    assert left == 2
    assert retention >= 90


async def test_purge_removes_login_challenges_a_day_after_they_expired(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, _ = await register(client)
    now = datetime.now(UTC)
    hashes = {age: uuid.uuid4().hex for age in ("expired_two_days", "expired_an_hour", "open")}
    expiry = {
        "expired_two_days": now - timedelta(days=2),
        "expired_an_hour": now - timedelta(hours=1),
        "open": now + timedelta(minutes=5),
    }
    async with identity_app.state.database.sessionmaker() as session:
        for age, id_hash in hashes.items():
            session.add(
                LoginChallenge(
                    id_hash=id_hash,
                    account_id=uuid.UUID(account_id),
                    methods=["sms"],
                    reasons=[],
                    expires_at=expiry[age],
                )
            )
        await session.commit()
    token = await service_token(client, client_id="identity")
    assert (await client.post("/internal/login-log/purge", headers=bearer(token))).status_code == 200
    async with identity_app.state.database.sessionmaker() as session:
        left = set(
            (
                await session.scalars(
                    select(LoginChallenge.id_hash).where(LoginChallenge.id_hash.in_(list(hashes.values())))
                )
            ).all()
        )
    assert left == {hashes["expired_an_hour"], hashes["open"]}
