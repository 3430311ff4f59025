"""One risk app per test module, on a database of its own, driven in process.

Tests use fresh random customers, so they do not see each other's baselines
though they share the app. ``Risk`` wraps the client with service and staff
tokens from a :class:`TestIssuer` and the calls most tests make.
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
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from kit.permissions import ApprovalRefused, Decision, payload_hash
from services.risk.app import create
from services.risk.config import RiskSettings
from services.risk.deps import FixedModel
from services.risk.models import outbox
from tests.support.database import TestDatabases
from tests.support.tokens import TestIssuer

ALL_SCOPES = "risk:score risk:labels risk:lists risk:read risk:signals"
T0 = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Risk:
    client: httpx.AsyncClient
    issuer: TestIssuer
    app: FastAPI

    @property
    def sessionmaker(self) -> async_sessionmaker[AsyncSession]:
        maker: async_sessionmaker[AsyncSession] = self.app.state.database.sessionmaker
        return maker

    @property
    def permissions(self) -> AllowAll:
        checker: AllowAll = self.app.state.permission_client
        return checker

    @property
    def model_source(self) -> FixedModel:
        source: FixedModel = self.app.state.model_source
        return source

    def service(self, name: str = "core-banking", scope: str = ALL_SCOPES) -> dict[str, str]:
        return self.issuer.headers(subject=name, kind="service", scope=scope)

    def staff(self, subject: str | None = None, **kwargs: Any) -> dict[str, str]:
        return self.issuer.headers(subject=subject or new_id(), kind="staff", **kwargs)

    async def score(self, **fields: Any) -> dict[str, Any]:
        response = await self.score_raw(**fields)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def score_raw(self, **fields: Any) -> httpx.Response:
        body = transaction(**fields)
        return await self.client.post("/internal/transactions/score", json=body, headers=self.service())

    async def login(self, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "account_id": new_id(),
            "account_kind": "customer",
            "risk_level": "normal",
            "ip": "203.0.113.9",
            "region": "CN-11",
            "device_id": None,
            "signals": [],
            "occurred_at": T0.isoformat(),
        }
        body.update(fields)
        response = await self.client.post("/internal/logins/score", json=body, headers=self.service("identity"))
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def outbox_rows(self, like: str = "%") -> list[dict[str, Any]]:
        table = outbox.messages
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(table).where(table.c.idempotency_key.like(like)).order_by(table.c.created_at)
                )
            ).all()
        return [dict(r._mapping) for r in rows]


def transaction(**fields: Any) -> dict[str, Any]:
    occurred = fields.pop("occurred_at", T0)
    body: dict[str, Any] = {
        "transaction_id": new_id(),
        "account_id": "6222" + uuid.uuid4().hex[:12],
        "customer_id": None,
        "payee": "payee-" + uuid.uuid4().hex[:8],
        "amount_minor": 10_000,
        "currency": "CNY",
        "occurred_at": occurred.isoformat() if isinstance(occurred, datetime) else occurred,
        "kind": "transfer",
        "channel": "mobile",
        "ip": "203.0.113.7",
        "device_id": "dev-1",
        "region": "CN-31",
    }
    body.update(fields)
    return body


def settings(url: str, **overrides: Any) -> RiskSettings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": SecretStr(url),
        "gateway_url": "http://127.0.0.1:9",
        "log_json": False,
        "outbox_enabled": False,
        "ruleset_refresh_seconds": 0,
    }
    values.update(overrides)
    return RiskSettings(**values)


@pytest.fixture(scope="module")
async def risk(test_databases: TestDatabases) -> AsyncIterator[Risk]:
    url = await test_databases.clone("risk")
    app = create(settings(url), model_source=FixedModel(None))
    issuer = TestIssuer()
    async with app.router.lifespan_context(app):
        issuer.install(app)
        app.state.permission_client = AllowAll()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as client:
            yield Risk(client=client, issuer=issuer, app=app)


class AllowAll:
    """Staff permissions granted (the permissions service is tested on its own)."""

    def __init__(self) -> None:
        self.executed: dict[str, tuple[str, str]] = {}
        self.approved: set[str] = set()

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        return Decision(allowed=True, reason="test")

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        """As permissions does: only an approved approval, once, for the payload it was made for."""
        if approval_id not in self.approved:
            raise ApprovalRefused("not approved", approval_code="approval_not_approved")
        if approval_id in self.executed:
            raise ApprovalRefused("already executed", approval_code="approval_already_executed")
        self.executed[approval_id] = (operation, payload_hash(payload))
        return {"executed": True, "approval_id": approval_id, "operation": operation}


@pytest.fixture(autouse=True)
def no_model(risk: Risk) -> None:
    risk.model_source.scorer = None


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)
