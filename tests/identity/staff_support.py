"""Staff accounts for identity tests, made with the same code the CLI uses."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pyotp
from fastapi import FastAPI

from services.identity.accounts.service import create_staff
from services.identity.runtime import Runtime
from tests.identity.support import bearer, login

#: Recovery codes of the staff members made by ``staff_token`` (for step-ups right after a TOTP login,
#: when the authenticator's next code is not due yet).
RECOVERY_CODES: dict[str, list[str]] = {}


async def make_staff(app: FastAPI, username: str) -> tuple[str, str]:
    runtime: Runtime = app.state.identity
    async with app.state.database.sessionmaker() as session:
        account, password = await create_staff(session, runtime, username=username, email=None, actor="test")
        await session.commit()
    return str(account.id), password


STAFF_PASSWORD = "Steady-Ledger-48-Compass!"


async def first_login(client: httpx.AsyncClient, username: str, one_time_password: str) -> dict[str, Any]:
    """Log in with the one-time password, which must be replaced (by ``STAFF_PASSWORD``) before a session exists."""
    answer = (await login(client, username, one_time_password)).json()
    assert answer["status"] == "password_change_required", answer
    done = await client.post(
        "/public/login/password", json={"challenge": answer["challenge"], "new_password": STAFF_PASSWORD}
    )
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


async def staff_token(client: httpx.AsyncClient, app: FastAPI, username: str) -> tuple[str, str]:
    """(staff id, aal2 access token) for a new staff member with an authenticator app."""
    staff_id, one_time = await make_staff(app, username)
    first = await first_login(client, username, one_time)
    assert first["status"] == "authenticated", first
    password = STAFF_PASSWORD
    # A new staff member has no second factor to step up with: the current password is the proof.
    started = (
        await client.post("/me/mfa/totp", json={"current_password": password}, headers=bearer(first["access_token"]))
    ).json()
    totp = pyotp.parse_uri(started["otpauth_uri"])
    assert isinstance(totp, pyotp.TOTP)
    confirmed = await client.post(
        "/me/mfa/totp/confirm", json={"code": totp.now()}, headers=bearer(first["access_token"])
    )
    RECOVERY_CODES[staff_id] = list(confirmed.json()["recovery_codes"])
    challenge = (await login(client, username, password)).json()
    done = await client.post(
        "/public/login/challenge/verify",
        json={"challenge": challenge["challenge"], "method": "otp", "code": totp.at(time.time() + 30)},
    )
    assert done.status_code == 200, done.text
    return staff_id, str(done.json()["access_token"])
