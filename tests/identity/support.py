"""Helpers for identity tests: valid real-name data, reading the development sink, signing in."""

from __future__ import annotations

import asyncio
import random
import re
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from services.identity.accounts.validation import iso7064_mod11_2_check
from services.identity.notifications.service import NotificationWorker

DEV_SECRET = "dev-insecure-service-client-secret"
PASSWORD = "Quiet-Harbour-7-Lantern!"


def national_id(birth: str | None = None) -> str:
    """A valid mainland ID; random birth date and sequence keep collisions between tests negligible."""
    if birth is None:
        day = date(1950, 1, 1) + timedelta(days=random.randint(0, 20_000))
        birth = f"{day:%Y%m%d}"
    body = f"{random.choice(('110105', '310104', '440305'))}{birth}{random.randint(0, 999):03d}"
    return body + iso7064_mod11_2_check(body)


def phone() -> str:
    return "139" + "".join(random.choice("0123456789") for _ in range(8))


def customer_data(**overrides: Any) -> dict[str, Any]:
    data = {
        "name": "王小明",
        "id_type": "cn_resident",
        "id_number": national_id(),
        "phone": phone(),
        "email": f"c{uuid.uuid4().hex[:10]}@example.com",
        "password": PASSWORD,
    }
    data.update(overrides)
    return data


async def service_token(client: httpx.AsyncClient, prefix: str = "", client_id: str = "risk") -> str:
    response = await client.post(
        f"{prefix}/public/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": DEV_SECRET},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def sink(client: httpx.AsyncClient, account_id: str, prefix: str = "") -> list[dict[str, Any]]:
    token = await service_token(client, prefix)
    response = await client.get(
        f"{prefix}/internal/dev/notifications",
        params={"account_id": account_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()
    return messages


async def delivered(app: FastAPI, client: httpx.AsyncClient, account_id: str, prefix: str = "") -> list[dict[str, Any]]:
    """The account's messages once none is pending: the worker read each recipient from the vault."""
    worker: NotificationWorker = app.state.notification_worker
    for _ in range(200):
        await worker.deliver_due()
        messages = await sink(client, account_id, prefix)
        if all(m["status"] != "pending" for m in messages):
            return messages
        await asyncio.sleep(0.02)  # the background worker holds them (SKIP LOCKED): let it finish
    raise AssertionError(f"messages of {account_id} still pending")


async def latest_code(client: httpx.AsyncClient, account_id: str, template: str, prefix: str = "") -> str:
    for message in await sink(client, account_id, prefix):
        if message["template"].startswith(template):
            found = re.search(r"\b(\d{6})\b", message["body"])
            assert found, message["template"]
            return found.group(1)
    raise AssertionError(f"no {template} message for {account_id}")


async def register(client: httpx.AsyncClient, prefix: str = "", **overrides: Any) -> tuple[str, dict[str, Any]]:
    """Register and verify the phone; returns (account id, registration data)."""
    data = customer_data(**overrides)
    response = await client.post(f"{prefix}/public/register", json=data)
    assert response.status_code == 201, response.text
    account_id = str(response.json()["account_id"])
    code = await latest_code(client, account_id, "code.verify:sms", prefix)
    verified = await client.post(
        f"{prefix}/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": code}
    )
    assert verified.status_code == 200, verified.text
    return account_id, data


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(
    client: httpx.AsyncClient, identifier: str, password: str = PASSWORD, prefix: str = "", **extra: Any
) -> httpx.Response:
    return await client.post(f"{prefix}/public/login", json={"identifier": identifier, "password": password, **extra})


async def signed_in(client: httpx.AsyncClient, **overrides: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A registered customer with a session: (account id, registration data, token response)."""
    account_id, data = await register(client, **overrides)
    response = await login(client, data["phone"], data["password"])
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    assert tokens["status"] == "authenticated", tokens
    return account_id, data, tokens


async def factor_change_proof(client: httpx.AsyncClient, token: str, prefix: str = "") -> dict[str, Any]:
    """What adding or removing a second factor from an aal1 session takes: a step-up for ``mfa.change``
    (an SMS code to the verified phone) and the current password, as the body of the request."""
    import jwt

    account_id = str(jwt.decode(token, options={"verify_signature": False})["sub"])
    sent = await client.post(
        f"{prefix}/me/step-up/send", json={"action": "mfa.change", "channel": "sms"}, headers=bearer(token)
    )
    assert sent.status_code == 200, sent.text
    code = await latest_code(client, account_id, "code.step_up:mfa.change", prefix)
    done = await client.post(
        f"{prefix}/me/step-up", json={"action": "mfa.change", "method": "sms", "code": code}, headers=bearer(token)
    )
    assert done.status_code == 201, done.text
    return {"current_password": PASSWORD}
