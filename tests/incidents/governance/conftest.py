"""Fixtures of the governance tests: the incidents app in process, test tokens, a permissions stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from kit.permissions import Decision
from services.incidents.app import create
from services.incidents.config import IncidentsSettings
from tests.support.database import TestDatabases
from tests.support.tokens import TestIssuer


@dataclass
class FakePermissions:
    """Stands in for permissions' check API in service-level tests (flow tests use the real service)."""

    grants: dict[str, set[str]] = field(default_factory=dict)

    def grant(self, subject: str, *permissions: str) -> None:
        self.grants.setdefault(subject, set()).update(permissions)

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        if permission in self.grants.get(subject, set()):
            return Decision(True, f"granted {permission}")
        return Decision(False, f"no grant of {permission}")


@dataclass
class Governance:
    app: FastAPI
    http: httpx.AsyncClient
    issuer: TestIssuer
    permissions: FakePermissions
    database_url: str

    def staff(self, *permissions: str, subject: str | None = None) -> dict[str, str]:
        subject = subject or str(uuid.uuid4())
        self.permissions.grant(subject, *permissions)
        return self.issuer.headers(subject=subject, kind="staff")

    def pin_today(self, today: date) -> None:
        self.app.state.governance_today = today


async def start_incidents(database_url: str, **overrides: Any) -> AsyncIterator[Governance]:
    settings = IncidentsSettings(
        environment="test",
        database_url=SecretStr(database_url),
        gateway_url=overrides.pop("gateway_url", "http://127.0.0.1:9"),
        log_json=False,
        outbox_enabled=False,
        **overrides,
    )
    app = create(settings)
    async with app.router.lifespan_context(app):
        issuer = TestIssuer()
        issuer.install(app)
        permissions = FakePermissions()
        app.state.permission_client = permissions
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://incidents") as http:
            yield Governance(app, http, issuer, permissions, database_url)


@pytest.fixture
async def gov(test_databases: TestDatabases) -> AsyncIterator[Governance]:
    url = await test_databases.clone("governance")
    async for client in start_incidents(url):
        yield client
