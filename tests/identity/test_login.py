"""Login from the attacker's side: lockout, uniform failures, races, the login log."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from argon2 import PasswordHasher, Type
from fastapi import FastAPI
from sqlalchemy import select, update

from services.identity.models import Account, LoginAttempt
from tests.identity.support import PASSWORD, login, register, sink


def _shape(response: httpx.Response) -> tuple[int, dict[str, Any], str | None]:
    body = {k: v for k, v in response.json().items() if k not in ("request_id", "instance")}
    return response.status_code, body, response.headers.get("www-authenticate")


async def _attempts(app: FastAPI, account_id: str) -> list[LoginAttempt]:
    async with app.state.database.sessionmaker() as session:
        rows = await session.scalars(
            select(LoginAttempt).where(LoginAttempt.account_id == uuid.UUID(account_id)).order_by(LoginAttempt.id)
        )
        return list(rows.all())


async def _account(app: FastAPI, account_id: str) -> Account:
    async with app.state.database.sessionmaker() as session:
        account: Account | None = await session.get(Account, uuid.UUID(account_id))
        assert account is not None
        return account


async def test_fourth_wrong_password_locks_and_then_even_the_right_one_fails(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, data = await register(client)
    for _ in range(3):
        assert (await login(client, data["phone"], "Wrong-password-1!")).status_code == 401
    assert (await _account(identity_app, account_id)).locked_until is None
    fourth = await login(client, data["phone"], "Wrong-password-1!")
    assert fourth.status_code == 401
    account = await _account(identity_app, account_id)
    assert account.locked_until is not None
    assert account.lockout_count == 1
    right = await login(client, data["phone"], PASSWORD)
    assert _shape(right) == _shape(fourth)
    reasons = [a.reason for a in await _attempts(identity_app, account_id)]
    assert reasons == ["wrong_password"] * 3 + ["wrong_password_locked", "account_locked"]
    alerts = [m for m in await sink(client, account_id) if m["template"] == "alert.lockout"]
    assert len(alerts) == 1
    assert alerts[0]["channel"] == "sms"


async def test_failures_look_the_same_for_unknown_wrong_and_locked(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    _, data = await register(client)
    unknown = await login(client, "13000000000", PASSWORD)
    wrong = await login(client, data["phone"], "Wrong-password-1!")
    for _ in range(3):
        await login(client, data["phone"], "Wrong-password-1!")
    locked = await login(client, data["phone"], PASSWORD)
    assert _shape(unknown) == _shape(wrong) == _shape(locked)
    assert unknown.status_code == 401
    assert unknown.json()["code"] == "invalid_credentials"


async def test_success_resets_the_count(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data = await register(client)
    for _ in range(3):
        await login(client, data["phone"], "Wrong-password-1!")
    assert (await login(client, data["phone"], PASSWORD)).status_code == 200
    assert (await _account(identity_app, account_id)).failed_count == 0
    for _ in range(3):
        await login(client, data["phone"], "Wrong-password-1!")
    assert (await login(client, data["phone"], PASSWORD)).status_code == 200


async def test_lock_time_doubles_with_each_lockout(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data = await register(client)
    durations = []
    for _ in range(3):
        for _ in range(4):
            await login(client, data["phone"], "Wrong-password-1!")
        account = await _account(identity_app, account_id)
        assert account.locked_until is not None
        durations.append(account.locked_until)
        # Let the lock run out without waiting for it.
        async with identity_app.state.database.sessionmaker() as session:
            await session.execute(
                update(Account)
                .where(Account.id == uuid.UUID(account_id))
                .values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
            )
            await session.commit()
    settings = identity_app.state.identity.settings
    attempts = await _attempts(identity_app, account_id)
    lock_times = [a.occurred_at for a in attempts if a.reason == "wrong_password_locked"]
    lengths = [(until - at).total_seconds() for until, at in zip(durations, lock_times, strict=True)]
    base = settings.lockout_base_seconds
    assert [round(x) for x in lengths] == [base, base * 2, base * 4]


async def test_fifty_parallel_wrong_passwords_never_let_a_guess_through(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, data = await register(client)
    guesses = [login(client, data["phone"], f"Wrong-password-{i}!") for i in range(50)]
    # The right password races the 50 wrong ones and must still be refused once they locked the account.
    results = await asyncio.gather(*guesses)
    assert {r.status_code for r in results} == {401}
    right = await login(client, data["phone"], PASSWORD)
    assert right.status_code == 401
    reasons = [a.reason for a in await _attempts(identity_app, account_id)]
    # Exactly four passwords were ever compared; every other attempt met the lock.
    assert reasons.count("wrong_password") == 3
    assert reasons.count("wrong_password_locked") == 1
    assert reasons.count("account_locked") == 47


async def test_frozen_and_closed_accounts_fail_like_wrong_passwords(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, data = await register(client)
    wrong = await login(client, data["phone"], "Wrong-password-1!")
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(update(Account).where(Account.id == uuid.UUID(account_id)).values(status="frozen"))
        await session.commit()
    frozen = await login(client, data["phone"], PASSWORD)
    assert _shape(frozen) == _shape(wrong)
    assert (await _attempts(identity_app, account_id))[-1].reason == "account_frozen"


async def test_login_log_records_every_attempt_with_context(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data = await register(client)
    headers = {"user-agent": "BankApp/5.2 iOS", "x-forwarded-for": "10.0.0.1, 198.51.100.7"}
    await client.post(
        "/public/login",
        json={"identifier": data["email"], "password": "nope", "device_id": "dev-1"},
        headers=headers,
    )
    await client.post(
        "/public/login", json={"identifier": data["email"], "password": PASSWORD, "device_id": "dev-1"}, headers=headers
    )
    failure, success = (await _attempts(identity_app, account_id))[-2:]
    assert (failure.result, failure.reason, failure.failed_count) == ("failure", "wrong_password", 1)
    assert (success.result, success.reason, success.failed_count) == ("success", None, 0)
    for row in (failure, success):
        assert (row.ip, row.region, row.device_id, row.user_agent) == (
            "198.51.100.7",
            "CN-SH",
            "dev-1",
            headers["user-agent"],
        )


async def test_unverified_phone_cannot_log_in(client: httpx.AsyncClient) -> None:
    from tests.identity.support import customer_data

    data = customer_data()
    assert (await client.post("/public/register", json=data)).status_code == 201
    response = await login(client, data["phone"], PASSWORD)
    assert response.status_code == 403
    assert response.json()["code"] == "contact_not_verified"


@pytest.mark.parametrize("identifier", ["", "x" * 300])
async def test_a_malformed_identifier_is_a_422_naming_the_field(client: httpx.AsyncClient, identifier: str) -> None:
    response = await client.post("/public/login", json={"identifier": identifier, "password": "p"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert [error["loc"] for error in problem["errors"]] == [["body", "identifier"]]
    if identifier:
        assert identifier not in response.text  # the rejected input is never echoed


async def test_a_blank_identifier_fails_like_any_unknown_account(client: httpx.AsyncClient) -> None:
    blank = await client.post("/public/login", json={"identifier": " ", "password": "p"})
    unknown = await client.post("/public/login", json={"identifier": "nobody@example.com", "password": "p"})
    assert blank.status_code == 401
    assert blank.json()["code"] == "invalid_credentials"
    assert _shape(blank) == _shape(unknown)


async def test_password_hash_is_upgraded_when_parameters_change(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    from argon2 import PasswordHasher

    account_id, data = await register(client)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(update(Account).where(Account.id == uuid.UUID(account_id)).values(password_hash=weak))
        await session.commit()
    assert (await login(client, data["phone"], PASSWORD)).status_code == 200
    upgraded = (await _account(identity_app, account_id)).password_hash
    assert upgraded is not None
    assert upgraded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


async def test_a_hash_made_with_older_parameters_is_replaced_at_the_next_login(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    account_id, data = await register(client)
    weaker = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash(PASSWORD)
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(update(Account).where(Account.id == uuid.UUID(account_id)).values(password_hash=weaker))
        await session.commit()
    assert (await login(client, data["phone"], PASSWORD)).json()["status"] == "authenticated"
    stored = (await _account(identity_app, account_id)).password_hash
    assert stored is not None
    assert stored != weaker
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert (await login(client, data["phone"], PASSWORD)).json()["status"] == "authenticated"


async def test_a_nul_in_the_identifier_is_a_422_naming_the_field_not_a_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/public/login", json={"identifier": "li\u0000lei", "password": PASSWORD, "device_id": "d"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_failed"
    assert "identifier" in response.text
