"""Permissions through the gateway over real HTTP, with staff and service bearer tokens.

The suite runs for real (gateway, identity, permissions, vault, risk,
incidents). Tokens: identity's staff login is built separately, so this test
signs its tokens with tests.support.tokens.TestIssuer and makes both the
gateway's and the permissions service's verifiers trust that key (the
gateway still verifies every token, its signature, audience and expiry).
Switch to identity's real tokens when its staff login is available.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kit.http import ServiceClient
from kit.permissions import PermissionClient, payload_hash
from services.permissions.cli import bootstrap_admin
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import suite_factories
from tests.support.tokens import TestIssuer

pytestmark = pytest.mark.flow

BASE = "/v1/permissions"


@dataclass
class Flow:
    client: httpx.AsyncClient
    issuer: TestIssuer
    admin: str
    gateway_url: str

    def staff(self, subject: str) -> dict[str, str]:
        return self.issuer.headers(subject=subject, kind="staff")

    def service(self, name: str) -> dict[str, str]:
        return self.issuer.headers(subject=name, kind="service")

    async def check(self, subject: str, permission: str) -> dict[str, Any]:
        response = await self.client.post(
            f"{BASE}/internal/checks",
            json={"subject": subject, "permission": permission},
            headers=self.service("vault"),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def train(self, subject: str) -> None:
        response = await self.client.post(
            f"{BASE}/staff/trainings",
            json={"subject": subject, "completed_at": datetime.now(UTC).isoformat(), "score": 90},
            headers=self.staff(self.admin),
        )
        assert response.status_code == 201, response.text

    async def request(self, subject: str, role: str, **extra: Any) -> httpx.Response:
        return await self.client.post(
            f"{BASE}/staff/grant-requests",
            json={"subject": subject, "role": role, **extra},
            headers=self.staff(subject),
        )

    async def approve(self, approval_id: str, approver: str) -> httpx.Response:
        return await self.client.post(
            f"{BASE}/staff/approvals/{approval_id}/approve", json={"comment": "ok"}, headers=self.staff(approver)
        )

    async def grant(self, subject: str, role: str, **extra: Any) -> None:
        """Requested by the subject, approved by the admin; trains the subject first."""
        await self.train(subject)
        requested = await self.request(subject, role, **extra)
        assert requested.status_code == 201, requested.text
        approved = await self.approve(requested.json()["id"], self.admin)
        assert approved.json()["state"] == "executed", approved.text


def capturing(
    factories: Mapping[str, Callable[[Mapping[str, str]], FastAPI]], apps: dict[str, FastAPI]
) -> dict[str, Callable[[Mapping[str, str]], FastAPI]]:
    def wrap(name: str, factory: Callable[[Mapping[str, str]], FastAPI]) -> Callable[[Mapping[str, str]], FastAPI]:
        def build(urls: Mapping[str, str]) -> FastAPI:
            apps[name] = factory(urls)
            return apps[name]

        return build

    return {name: wrap(name, factory) for name, factory in factories.items()}


@pytest.fixture(scope="module")
async def flow(test_databases: TestDatabases) -> AsyncIterator[Flow]:
    url = await test_databases.clone("perm_flow")
    apps: dict[str, FastAPI] = {}
    issuer = TestIssuer()
    async with live_suite(capturing(suite_factories(url), apps)) as suite:
        issuer.install(apps["permissions"])
        apps["gateway"].state.token_verifier.load_jwks(issuer.jwks())
        admin = str(uuid.uuid4())
        async with apps["permissions"].state.database.sessionmaker() as session:
            await bootstrap_admin(session, admin)
            await session.commit()
        apps["permissions"].state.policy_store.mark_stale()
        async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=10) as client:
            yield Flow(client=client, issuer=issuer, admin=admin, gateway_url=suite.gateway_url)


async def test_without_a_token_nothing_passes_the_gateway(flow: Flow) -> None:
    response = await flow.client.post(f"{BASE}/internal/checks", json={"subject": "x", "permission": "a:b"})
    assert response.status_code == 401
    staff_on_internal = await flow.client.post(
        f"{BASE}/internal/checks", json={"subject": "x", "permission": "a:b"}, headers=flow.staff(flow.admin)
    )
    assert staff_on_internal.status_code == 403


async def test_grant_by_a_second_person_then_a_check_with_its_reason(flow: Flow) -> None:
    teller = str(uuid.uuid4())
    await flow.train(teller)
    requested = await flow.request(teller, "teller", justification="new at branch 0101")
    assert requested.status_code == 201
    assert requested.json()["state"] == "pending"
    assert not (await flow.check(teller, "payment:make"))["allowed"]
    approved = await flow.approve(requested.json()["id"], flow.admin)
    assert approved.status_code == 200
    assert approved.json()["state"] == "executed"
    decision = await flow.check(teller, "payment:make")
    assert decision["allowed"] is True
    assert decision["role"] == "teller"
    assert decision["reason"].startswith(f"allowed by grant {decision['grant_id']}")
    denied = await flow.check(teller, "payment:check")
    assert decision["grant_id"] is not None
    assert denied["reason"] == "no active grant gives payment:check"


async def test_self_approval_is_refused(flow: Flow) -> None:
    requested = await flow.client.post(
        f"{BASE}/staff/grant-requests",
        json={"subject": str(uuid.uuid4()), "role": "auditor"},
        headers=flow.staff(flow.admin),
    )
    refused = await flow.approve(requested.json()["id"], flow.admin)
    assert refused.status_code == 403
    assert refused.json()["code"] == "self_approval"


async def test_sod_conflicting_grant_is_refused(flow: Flow) -> None:
    subject = str(uuid.uuid4())
    await flow.grant(subject, "auditor")
    refused = await flow.request(subject, "system_admin")
    assert refused.status_code == 409
    assert refused.json()["code"] == "sod_conflict"
    assert "who runs the systems does not audit them" in refused.json()["detail"]


async def test_high_risk_role_without_training_is_refused(flow: Flow) -> None:
    subject = str(uuid.uuid4())
    refused = await flow.request(subject, "approver")
    assert refused.status_code == 409
    assert refused.json()["code"] == "training_required"
    await flow.train(subject)
    await flow.grant(subject, "approver")
    assert (await flow.check(subject, "transfer:approve"))["allowed"]


async def test_grant_expires(flow: Flow) -> None:
    subject = str(uuid.uuid4())
    await flow.train(subject)
    expiry = datetime.now(UTC) + timedelta(seconds=2)
    requested = await flow.request(subject, "customer_manager", expires_at=expiry.isoformat())
    assert (await flow.approve(requested.json()["id"], flow.admin)).json()["state"] == "executed"
    assert (await flow.check(subject, "account:modify"))["allowed"]
    await asyncio.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.05)
    after = await flow.check(subject, "account:modify")
    assert not after["allowed"]
    assert "expired" in after["reason"]


async def test_approval_executes_once_and_never_twice(flow: Flow) -> None:
    maker, checker = str(uuid.uuid4()), str(uuid.uuid4())
    await flow.grant(maker, "customer_manager")
    await flow.grant(checker, "compliance_officer")
    payload = {"account_id": str(uuid.uuid4()), "reason": "verified in branch"}
    created = await flow.client.post(
        f"{BASE}/staff/approvals",
        json={"operation": "account.unfreeze", "payload": payload},
        headers=flow.staff(maker),
    )
    assert created.status_code == 201
    approval_id = created.json()["id"]
    assert (await flow.approve(approval_id, maker)).json()["code"] == "self_approval"
    assert (await flow.approve(approval_id, checker)).json()["state"] == "approved"
    body = {"operation": "account.unfreeze", "payload_hash": payload_hash(payload)}

    async def execute() -> httpx.Response:
        return await flow.client.post(
            f"{BASE}/internal/approvals/{approval_id}/execute", json=body, headers=flow.service("identity")
        )

    results = await asyncio.gather(*(execute() for _ in range(8)))
    assert sorted(r.status_code for r in results) == [200] + [409] * 7
    winner = next(r for r in results if r.status_code == 200)
    assert winner.json()["approved_by"] == [checker]
    again = await execute()
    assert again.json()["code"] == "approval_already_executed"


async def test_kit_client_sees_a_suspension_within_the_stated_bound(flow: Flow) -> None:
    """A service's cached decision lasts at most permission_cache_seconds; permissions itself is immediate."""
    subject = str(uuid.uuid4())
    await flow.grant(subject, "risk_analyst")
    token = flow.issuer.mint(subject="vault", kind="service")

    async def vault_token() -> str:
        return token

    cache_seconds = 1.0
    client = ServiceClient(flow.gateway_url, token_provider=vault_token)
    checker = PermissionClient(client, cache_seconds=cache_seconds)
    try:
        assert (await checker.check(subject, "risk:modify")).allowed
        suspended = await flow.client.post(
            f"{BASE}/internal/subjects/{subject}/suspension",
            json={"reason": "alert: rule edits at 3am"},
            headers=flow.service("risk"),
        )
        assert suspended.status_code == 200
        direct = await flow.check(subject, "risk:modify")
        assert not direct["allowed"]
        assert "suspended" in direct["reason"]
        await asyncio.sleep(cache_seconds)
        after_bound = await checker.check(subject, "risk:modify")
        assert not after_bound.allowed
        assert "suspended" in after_bound.reason
        assert (await checker.check(subject, "risk:read")).allowed  # low-risk permissions stay
    finally:
        await client.aclose()
