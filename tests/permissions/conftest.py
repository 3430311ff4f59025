"""One permissions app per test module, on a database of its own, driven in process.

Tests use fresh random subjects, so they do not see each other's grants even
though they share the app. ``Perms`` wraps the client with staff and service
tokens from a :class:`TestIssuer` and the steps most tests need (grant a
role through request and approval, record a training).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.permissions.app import create
from services.permissions.checks.store import PolicyStore
from services.permissions.cli import bootstrap_admin
from services.permissions.config import PermissionsSettings
from tests.support.database import TestDatabases
from tests.support.tokens import TestIssuer

#: Shipped roles that give no high-risk permission (every other role needs training).
LOW_RISK_ROLES = {"restricted_user", "user", "manager", "auditor"}


def new_subject() -> str:
    return str(uuid.uuid4())


@dataclass
class Perms:
    client: httpx.AsyncClient
    issuer: TestIssuer
    admin: str
    app: FastAPI

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        maker: async_sessionmaker[AsyncSession] = self.app.state.database.sessionmaker
        return maker

    @property
    def store(self) -> PolicyStore:
        store: PolicyStore = self.app.state.policy_store
        return store

    def staff(self, subject: str, **kwargs: Any) -> dict[str, str]:
        return self.issuer.headers(subject=subject, kind="staff", **kwargs)

    def service(self, name: str = "vault") -> dict[str, str]:
        return self.issuer.headers(subject=name, kind="service", session_id=None)

    async def check(self, subject: str, permission: str, scope: str | None = None) -> dict[str, Any]:
        response = await self.client.post(
            "/internal/checks",
            json={"subject": subject, "permission": permission, "scope": scope},
            headers=self.service(),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def train(self, subject: str, **extra: Any) -> httpx.Response:
        body = {"subject": subject, "completed_at": datetime.now(UTC).isoformat(), **extra}
        return await self.client.post("/staff/trainings", json=body, headers=self.staff(self.admin))

    async def request(self, subject: str, role: str, *, requester: str | None = None, **extra: Any) -> httpx.Response:
        body = {"subject": subject, "role": role, **extra}
        return await self.client.post("/staff/grant-requests", json=body, headers=self.staff(requester or subject))

    async def approve(self, approval_id: str, approver: str, comment: str = "") -> httpx.Response:
        return await self.client.post(
            f"/staff/approvals/{approval_id}/approve", json={"comment": comment}, headers=self.staff(approver)
        )

    async def grant(self, subject: str, role: str, **extra: Any) -> dict[str, Any]:
        """Request (by the subject) and approve (by the admin) a role; trains the subject if needed."""
        if role not in LOW_RISK_ROLES:
            assert (await self.train(subject)).status_code == 201
        requested = await self.request(subject, role, **extra)
        assert requested.status_code == 201, requested.text
        approved = await self.approve(requested.json()["id"], self.admin)
        assert approved.status_code == 200, approved.text
        body: dict[str, Any] = approved.json()
        assert body["state"] == "executed"
        return body

    async def staff_member(self, *roles: str) -> str:
        subject = new_subject()
        for role in roles:
            await self.grant(subject, role)
        return subject


def settings(url: str, **overrides: Any) -> PermissionsSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": SecretStr(url),
        "gateway_url": "http://127.0.0.1:9",
        "log_json": False,
        "outbox_enabled": False,
        "index_refresh_seconds": 0.2,
    }
    values.update(overrides)
    return PermissionsSettings(**values)


@pytest.fixture(scope="module")
async def perms(test_databases: TestDatabases) -> AsyncIterator[Perms]:
    url = await test_databases.clone("perm")
    # Built directly (not through tests.support.suite) so these tests need no other service to import.
    app = create(settings(url))
    issuer = TestIssuer()
    async with app.router.lifespan_context(app):
        issuer.install(app)
        admin = new_subject()
        async with app.state.database.sessionmaker() as session:
            await bootstrap_admin(session, admin)
            await session.commit()
        app.state.policy_store.mark_stale()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://permissions") as client:
            yield Perms(client=client, issuer=issuer, admin=admin, app=app)


def soon(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
