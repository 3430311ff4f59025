"""Fixtures of the vault's service-level tests: the app in process, test tokens, a permissions stand-in."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from kit.permissions import ApprovalRefused, Decision, payload_hash
from services.vault.app import create
from services.vault.config import VaultSettings
from tests.support.database import TestDatabases
from tests.support.tokens import TestIssuer


@dataclass
class FakePermissions:
    """Stands in for the permissions service in service-level tests (its check and approval-execute API).

    It implements the two calls the vault makes (``check`` and
    ``execute_approval``) with the contract of docs/contracts.md: an approval
    executes once, only for its operation and payload hash. The flow test
    uses the real permissions service instead.
    """

    grants: dict[str, set[str]] = field(default_factory=dict)
    approvals: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: list[tuple[str, str]] = field(default_factory=list)

    def grant(self, subject: str, *permissions: str) -> None:
        self.grants.setdefault(subject, set()).update(permissions)

    def approve(self, operation: str, payload: Any, approvers: tuple[str, ...] = ("checker-1",)) -> str:
        approval_id = str(uuid.uuid4())
        self.approvals[approval_id] = {
            "operation": operation,
            "payload_hash": payload_hash(payload),
            "state": "approved",
            "approved_by": list(approvers),
        }
        return approval_id

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        self.checks.append((subject, permission))
        if permission in self.grants.get(subject, set()):
            return Decision(True, f"granted {permission}", grant_id=str(uuid.uuid5(uuid.NAMESPACE_URL, subject)))
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
class VaultClient:
    app: FastAPI
    http: httpx.AsyncClient
    issuer: TestIssuer
    permissions: FakePermissions
    database_url: str

    def staff(self, *permissions: str, subject: str | None = None, acr: str = "aal2") -> dict[str, str]:
        subject = subject or str(uuid.uuid4())
        self.permissions.grant(subject, *permissions)
        return self.issuer.headers(subject=subject, kind="staff", acr=acr)

    def service(self, name: str) -> dict[str, str]:
        return self.issuer.headers(subject=name, kind="service", session_id=None)

    def customer(self, subject: str) -> dict[str, str]:
        return self.issuer.headers(subject=subject, kind="customer")

    async def shred(self, subject: str, headers: dict[str, str] | None = None) -> httpx.Response:
        """Crypto-shred a subject as staff with an approved `vault.shred` request (maker-checker)."""
        approval_id = self.permissions.approve("vault.shred", {"subject_id": subject})
        return await self.http.delete(
            f"/staff/subjects/{subject}",
            params={"approval_id": approval_id},
            headers=headers or self.staff("account:close"),
        )


async def start_vault(database_url: str, **overrides: Any) -> AsyncIterator[VaultClient]:
    overrides.setdefault("rewrap_enabled", False)
    overrides.setdefault("key_cache_seconds", 0.0)
    # Built directly (not through tests.support.suite) so these tests import no other service.
    settings = VaultSettings(
        environment="test",
        database_url=SecretStr(database_url),
        gateway_url="http://127.0.0.1:9",
        log_json=False,
        **overrides,
    )
    app = create(settings)
    async with app.router.lifespan_context(app):
        issuer = TestIssuer()
        issuer.install(app)
        permissions = FakePermissions()
        app.state.permission_client = permissions
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vault") as http:
            yield VaultClient(app, http, issuer, permissions, database_url)


@pytest.fixture
async def vault(test_databases: TestDatabases) -> AsyncIterator[VaultClient]:
    """A vault app on a database of this test's own."""
    url = await test_databases.clone("vault_test")
    async for client in start_vault(url):
        yield client
