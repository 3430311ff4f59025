"""People of the incidents flow test and bench, made through the real gateway and services.

Customers register and sign in through the gateway (codes read from identity's
development sink: the stand-in for the SMS/e-mail provider). Staff are made
with the code identity's CLI runs, the first admin with permissions' bootstrap
code, and roles are granted through a real maker-checker approval.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI

from services.identity.accounts.service import create_staff
from services.identity.tokens.clients import register_client
from services.permissions.cli import bootstrap_admin
from tests.identity.support import DEV_SECRET, PASSWORD, bearer, customer_data

ID = "/v1/identity"
PERMISSIONS = "/v1/permissions"


async def service_token(client: httpx.AsyncClient, name: str) -> str:
    response = await client.post(
        f"{ID}/public/oauth/token",
        data={"grant_type": "client_credentials", "client_id": name, "client_secret": DEV_SECRET},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def grant_scopes(identity: FastAPI, client_id: str, scopes: list[str]) -> None:
    """The development registration of a client with its scopes (CONTRACTS.md's scope table)."""
    async with identity.state.database.sessionmaker() as session:
        await register_client(session, identity.state.identity, client_id, DEV_SECRET, scopes)
        await session.commit()


async def sink(client: httpx.AsyncClient, account_id: str) -> list[dict[str, Any]]:
    token = await service_token(client, "risk")
    response = await client.get(
        f"{ID}/internal/dev/notifications", params={"account_id": account_id}, headers=bearer(token)
    )
    assert response.status_code == 200, response.text
    messages: list[dict[str, Any]] = response.json()
    return messages


async def code(client: httpx.AsyncClient, account_id: str, template: str) -> str:
    for _ in range(100):
        for message in await sink(client, account_id):
            if message["template"].startswith(template):
                found = re.search(r"\b(\d{6})\b", message["body"])
                assert found
                return found.group(1)
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {template} message for {account_id}")


async def _finish(client: httpx.AsyncClient, account_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    if answer["status"] == "mfa_required":
        channel = "sms" if "sms" in answer["methods"] else "email"
        sent = await client.post(
            f"{ID}/public/login/challenge/send", json={"challenge": answer["challenge"], "channel": channel}
        )
        assert sent.status_code == 200, sent.text
        done = await client.post(
            f"{ID}/public/login/challenge/verify",
            json={
                "challenge": answer["challenge"],
                "method": channel,
                "code": await code(client, account_id, "code.login"),
            },
        )
        assert done.status_code == 200, done.text
        answer = done.json()
    if answer["status"] == "password_change_required":
        changed = await client.post(
            f"{ID}/public/login/password",
            json={"challenge": answer["challenge"], "new_password": f"Own-Password-{uuid.uuid4().hex[:8]}-!"},
        )
        assert changed.status_code == 200, changed.text
        answer = changed.json()
    assert answer["status"] == "authenticated", answer
    return answer


async def customer(client: httpx.AsyncClient) -> tuple[str, str]:
    """A registered customer with a verified phone, signed in: (account id, access token)."""
    data = customer_data()
    registered = await client.post(f"{ID}/public/register", json=data)
    assert registered.status_code == 201, registered.text
    account_id = str(registered.json()["account_id"])
    verified = await client.post(
        f"{ID}/public/register/verify",
        json={"account_id": account_id, "channel": "sms", "code": await code(client, account_id, "code.verify:sms")},
    )
    assert verified.status_code == 200, verified.text
    answer = await client.post(
        f"{ID}/public/login", json={"identifier": data["phone"], "password": PASSWORD, "device_id": "phone-1"}
    )
    assert answer.status_code == 200, answer.text
    tokens = await _finish(client, account_id, answer.json())
    return account_id, str(tokens["access_token"])


async def staff(client: httpx.AsyncClient, identity: FastAPI) -> tuple[str, str]:
    """A staff member as identity's CLI makes one, signed in through the gateway: (id, access token)."""
    username = f"staff-{uuid.uuid4().hex[:10]}"
    async with identity.state.database.sessionmaker() as session:
        account, password = await create_staff(
            session, identity.state.identity, username=username, email=f"{username}@bank.example", actor="cli"
        )
        await session.commit()
    subject = str(account.id)
    answer = await client.post(
        f"{ID}/public/login", json={"identifier": username, "password": password, "device_id": "desk-1"}
    )
    assert answer.status_code == 200, answer.text
    tokens = await _finish(client, subject, answer.json())
    return subject, str(tokens["access_token"])


async def make_admin(permissions: FastAPI, subject: str) -> None:
    """What `python -m services.permissions.cli bootstrap-admin <id>` does."""
    async with permissions.state.database.sessionmaker() as session:
        await bootstrap_admin(session, subject)
        await session.commit()
    permissions.state.policy_store.mark_stale()


async def grant_role(client: httpx.AsyncClient, subject: str, token: str, admin_token: str, role: str) -> None:
    """Trained, then the role asked for by the subject and approved by the admin (a different person)."""
    trained = await client.post(
        f"{PERMISSIONS}/staff/trainings",
        json={"subject": subject, "completed_at": datetime.now(UTC).isoformat(), "score": 90},
        headers=bearer(admin_token),
    )
    assert trained.status_code == 201, trained.text
    asked = await client.post(
        f"{PERMISSIONS}/staff/grant-requests",
        json={"subject": subject, "role": role, "justification": "incident response rota"},
        headers=bearer(token),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"{PERMISSIONS}/staff/approvals/{asked.json()['id']}/approve",
        json={"comment": "ok"},
        headers=bearer(admin_token),
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "executed", approved.text
