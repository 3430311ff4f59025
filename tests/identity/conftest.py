"""Fixtures of the identity tests: one app per module on its own database, driven in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kit.permissions import ApprovalRefused, Decision, payload_hash
from tests.support.database import TestDatabases
from tests.support.suite import build_service


@dataclass
class FakePermissions:
    """Stands in for the permissions service in service-level tests (flow tests use the real one)."""

    granted: dict[str, set[str]] = field(default_factory=dict)
    #: approval id -> (operation, payload hash) approved and not yet executed
    approved: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        allowed = permission in self.granted.get(subject, set())
        return Decision(allowed, "granted" if allowed else "no grant")

    def grant(self, subject: str, *permissions: str) -> None:
        self.granted.setdefault(subject, set()).update(permissions)

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        expected = self.approved.pop(approval_id, None)
        if expected is None:
            raise ApprovalRefused("not approved", approval_code="approval_not_approved")
        if expected != (operation, payload_hash(payload)):
            raise ApprovalRefused("payload mismatch", approval_code="approval_payload_mismatch")
        return {"executed": True, "approved_by": ["checker"]}


@pytest.fixture(scope="module")
async def identity_db(test_databases: TestDatabases) -> str:
    return await test_databases.clone("identity")


@pytest.fixture(scope="module")
async def identity_app(identity_db: str) -> AsyncIterator[FastAPI]:
    app = build_service("identity", identity_db, risk_scoring_enabled=False, outbox_enabled=False)
    async with app.router.lifespan_context(app):
        app.state.permission_client = FakePermissions()
        yield app


@pytest.fixture
async def client(identity_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=identity_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://identity.test") as c:
        yield c


@pytest.fixture
def permissions(identity_app: FastAPI) -> FakePermissions:
    fake: FakePermissions = identity_app.state.permission_client
    return fake
