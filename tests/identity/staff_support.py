"""Staff accounts for identity tests, made with the same code the CLI uses."""

from __future__ import annotations

import httpx
from fastapi import FastAPI

from services.identity.accounts.service import create_staff
from services.identity.runtime import Runtime
from tests.identity.support import login


async def make_staff(app: FastAPI, username: str) -> tuple[str, str]:
    runtime: Runtime = app.state.identity
    async with app.state.database.sessionmaker() as session:
        account, password = await create_staff(session, runtime, username=username, email=None, actor="test")
        await session.commit()
    return str(account.id), password


async def staff_token(client: httpx.AsyncClient, app: FastAPI, username: str) -> tuple[str, str]:
    """(staff id, access token) for a new staff member."""
    staff_id, password = await make_staff(app, username)
    response = await login(client, username, password)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "authenticated", body
    return staff_id, str(body["access_token"])
