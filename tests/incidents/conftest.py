"""Fixtures of the incidents service-level tests: the app in process, test tokens, a moved clock,
a permissions stand-in. Flow tests (tests/flows/test_incidents_flow.py) use the real services."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select, update

from kit.permissions import ApprovalRefused, Decision, payload_hash
from services.incidents.app import create
from services.incidents.config import IncidentsSettings
from services.incidents.models import outbox
from services.incidents.worker import ResponseWorker, TickResult
from tests.support.database import TestDatabases
from tests.support.tokens import TestIssuer

ALL = ("incident:read", "incident:modify", "incident:execute")


@dataclass
class MovableClock:
    """The service's clock in tests: moved by hand, never slept on."""

    now: datetime = field(default_factory=lambda: datetime(2026, 12, 1, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@dataclass
class FakePermissions:
    """Stands in for the permissions service (its check and approval-execute API, as in docs/contracts.md)."""

    grants: dict[str, set[str]] = field(default_factory=dict)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)

    def grant(self, subject: str, *permissions: str) -> None:
        self.grants.setdefault(subject, set()).update(permissions)

    def approve(self, operation: str, payload: Any) -> str:
        approval_id = str(uuid.uuid4())
        self.approvals[approval_id] = {
            "operation": operation,
            "payload_hash": payload_hash(payload),
            "state": "approved",
            "approved_by": ["checker-1"],
        }
        return approval_id

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        if permission in self.grants.get(subject, set()):
            return Decision(True, f"granted {permission}")
        return Decision(False, f"no grant of {permission}")

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        approval = self.approvals.get(approval_id)
        if approval is None:
            raise ApprovalRefused("no such approval", approval_code="approval_not_found")
        if approval["state"] == "executed":
            raise ApprovalRefused("already executed", approval_code="approval_already_executed")
        if approval["operation"] != operation or approval["payload_hash"] != payload_hash(payload):
            raise ApprovalRefused("payload mismatch", approval_code="approval_payload_mismatch")
        approval["state"] = "executed"
        return {"executed": True, "approved_by": approval["approved_by"]}


@dataclass
class IncidentsClient:
    app: FastAPI
    http: httpx.AsyncClient
    issuer: TestIssuer
    permissions: FakePermissions
    clock: MovableClock
    database_url: str

    def staff(self, *permissions: str, subject: str | None = None) -> dict[str, str]:
        subject = subject or str(uuid.uuid4())
        self.permissions.grant(subject, *(permissions or ALL))
        return self.issuer.headers(subject=subject, kind="staff")

    def service(self, name: str, scope: str = "incidents:report") -> dict[str, str]:
        return self.issuer.headers(subject=name, kind="service", session_id=None, scope=scope)

    def customer(self, subject: str) -> dict[str, str]:
        return self.issuer.headers(subject=subject, kind="customer", acr="aal1")

    @property
    def worker(self) -> ResponseWorker:
        worker: ResponseWorker = self.app.state.response_worker
        return worker

    async def tick(self) -> TickResult:
        return await self.worker.tick()

    async def messages(self) -> list[Any]:
        """The outbox, oldest first."""
        table = outbox.messages
        async with self.app.state.database.sessionmaker() as session:
            return list((await session.execute(select(table).order_by(table.c.created_at, table.c.path))).all())

    async def settle(self, key: str, *, delivered: bool = True, error: str = "404: unknown account") -> None:
        """Stand in for the outbox worker's delivery outcome of one message (the flow test delivers for real)."""
        table = outbox.messages
        values: dict[str, Any] = (
            {"status": "delivered", "delivered_at": self.clock.now, "attempts": 1}
            if delivered
            else {"status": "dead", "last_error": error, "attempts": 1}
        )
        async with self.app.state.database.sessionmaker() as session, session.begin():
            await session.execute(update(table).where(table.c.idempotency_key == key).values(**values))

    async def report(self, **overrides: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "source": "risk_decision",
            "type": "account_takeover",
            "level": None,
            "correlation_key": f"account:{uuid.uuid4()}",
            "summary": "transfer scored 93",
            "occurred_at": self.clock.now.isoformat(),
            "account_id": str(uuid.uuid4()),
            "reference": {"kind": "risk_decision", "id": str(uuid.uuid4())},
            "observables": [{"kind": "ip", "value": "203.0.113.7"}],
        }
        body.update(overrides)
        return await self.http.post(
            "/internal/reports",
            json=body,
            headers={**self.service("risk"), "Idempotency-Key": f"report-{uuid.uuid4()}"},
        )


def settings_for(database_url: str, **overrides: Any) -> IncidentsSettings:
    overrides.setdefault("worker_enabled", False)
    overrides.setdefault("outbox_enabled", False)
    return IncidentsSettings(
        environment="test",
        database_url=SecretStr(database_url),
        gateway_url="http://127.0.0.1:9",
        log_json=False,
        **overrides,
    )


async def start_incidents(
    database_url: str, clock: MovableClock | None = None, permissions: FakePermissions | None = None, **overrides: Any
) -> AsyncIterator[IncidentsClient]:
    clock = clock or MovableClock()
    app = create(settings_for(database_url, **overrides), clock=clock)
    async with app.router.lifespan_context(app):
        issuer = TestIssuer()
        issuer.install(app)
        permissions = permissions or FakePermissions()
        app.state.permission_client = permissions
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://incidents") as http:
            yield IncidentsClient(app, http, issuer, permissions, clock, database_url)


@pytest.fixture
async def incidents(test_databases: TestDatabases) -> AsyncIterator[IncidentsClient]:
    """An incidents app on a database of this test's own, its worker driven by the test."""
    url = await test_databases.clone("incidents_test")
    async for client in start_incidents(url):
        yield client
