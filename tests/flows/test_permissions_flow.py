"""Permissions through the gateway over real HTTP, with identity's real staff and service tokens.

The whole suite runs (gateway, identity, permissions, vault, risk, incidents).
Staff members are created with the code identity's CLI runs and sign in
through the gateway (password, then the e-mail code read from identity's
development notification sink: the stand-in for the outside world's e-mail
provider); services get their tokens with client credentials. The first
admin is made by permissions' bootstrap CLI code. The gateway's login and
OTP rate limits are raised (this test signs in more often than a person
would from one address); they are the gateway's own subject.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from kit.http import ServiceClient
from kit.permissions import PermissionClient, payload_hash
from kit.service_auth import ClientCredentialsProvider
from services.identity.accounts.service import create_staff
from services.permissions.cli import bootstrap_admin
from tests.support.codes import sent_code
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

BASE = "/v1/permissions"
ID = "/v1/identity"
SECRET = "dev-insecure-service-client-secret"
RELAXED = {"rate_limit_classes": {"login": "1000/minute", "otp": "1000/minute"}}
#: identity reuses a permission decision this long (the default is 3 s; shortened so the test waits less).
IDENTITY_CACHE_SECONDS = 1.0
OVERRIDES: dict[str, dict[str, Any]] = {
    "gateway": RELAXED,
    "identity": {"permission_cache_seconds": IDENTITY_CACHE_SECONDS},
}


@dataclass
class Flow:
    client: httpx.AsyncClient
    apps: dict[str, FastAPI]
    gateway_url: str
    admin: str = ""
    tokens: dict[str, str] = field(default_factory=dict)
    service_tokens: dict[str, str] = field(default_factory=dict)

    def staff(self, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[subject]}"}

    async def service(self, name: str) -> dict[str, str]:
        if name not in self.service_tokens:
            response = await self.client.post(
                f"{ID}/public/oauth/token",
                data={"grant_type": "client_credentials", "client_id": name, "client_secret": SECRET},
            )
            assert response.status_code == 200, response.text
            self.service_tokens[name] = str(response.json()["access_token"])
        return {"Authorization": f"Bearer {self.service_tokens[name]}"}

    async def new_staff(self) -> str:
        """A staff account made as identity's CLI makes it, signed in through the gateway: password,
        e-mail code, then the one-time password replaced by the person's own."""
        identity = self.apps["identity"]
        username = f"staff-{uuid.uuid4().hex[:10]}"
        async with identity.state.database.sessionmaker() as session:
            account, password = await create_staff(
                session, identity.state.identity, username=username, email=f"{username}@bank.example", actor="cli"
            )
            await session.commit()
        subject = str(account.id)
        answer = (
            await self.client.post(
                f"{ID}/public/login", json={"identifier": username, "password": password, "device_id": "flow-tool"}
            )
        ).json()
        if answer["status"] == "mfa_required":
            channel = "sms" if "sms" in answer["methods"] else "email"
            sent = await self.client.post(
                f"{ID}/public/login/challenge/send", json={"challenge": answer["challenge"], "channel": channel}
            )
            assert sent.status_code == 200, sent.text
            code = await self._code(subject, "code.login")
            done = await self.client.post(
                f"{ID}/public/login/challenge/verify",
                json={"challenge": answer["challenge"], "method": channel, "code": code},
            )
            assert done.status_code == 200, done.text
            answer = done.json()
        if answer["status"] == "password_change_required":
            # First sign-in: the one-time password from the CLI is replaced.
            changed = await self.client.post(
                f"{ID}/public/login/password",
                json={"challenge": answer["challenge"], "new_password": f"Own-Password-{uuid.uuid4().hex[:8]}-!"},
            )
            assert changed.status_code == 200, changed.text
            answer = changed.json()
        assert answer["status"] == "authenticated", answer
        self.tokens[subject] = str(answer["access_token"])
        return subject

    async def _code(self, account_id: str, template: str) -> str:
        """The latest code "sent" to an account, from identity's development sink."""
        token = (await self.service("risk"))["Authorization"].removeprefix("Bearer ")
        return await sent_code(self.client, account_id, template, token=token)

    async def check(self, subject: str, permission: str) -> dict[str, Any]:
        response = await self.client.post(
            f"{BASE}/internal/checks",
            json={"subject": subject, "permission": permission},
            headers=await self.service("vault"),
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
    async with contextlib.AsyncExitStack() as stack:
        suite = await stack.enter_async_context(live_suite(capturing(suite_factories(url, overrides=OVERRIDES), apps)))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=suite.gateway_url, timeout=20))
        flow = Flow(client=client, apps=apps, gateway_url=suite.gateway_url)
        flow.admin = await flow.new_staff()
        # What `python -m services.permissions.cli bootstrap-admin <id>` does.
        async with apps["permissions"].state.database.sessionmaker() as session:
            await bootstrap_admin(session, flow.admin)
            await session.commit()
        apps["permissions"].state.policy_store.mark_stale()
        yield flow


async def test_without_a_token_nothing_passes_the_gateway(flow: Flow) -> None:
    response = await flow.client.post(f"{BASE}/internal/checks", json={"subject": "x", "permission": "a:b"})
    assert response.status_code == 401
    staff_on_internal = await flow.client.post(
        f"{BASE}/internal/checks", json={"subject": "x", "permission": "a:b"}, headers=flow.staff(flow.admin)
    )
    assert staff_on_internal.status_code == 403, staff_on_internal.text


async def test_grant_by_a_second_person_then_a_check_with_its_reason(flow: Flow) -> None:
    teller = await flow.new_staff()
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
    subject = await flow.new_staff()
    await flow.grant(subject, "auditor")
    refused = await flow.request(subject, "system_admin")
    assert refused.status_code == 409
    assert refused.json()["code"] == "sod_conflict"
    assert "who runs the systems does not audit them" in refused.json()["detail"]


async def test_high_risk_role_without_training_is_refused(flow: Flow) -> None:
    subject = await flow.new_staff()
    refused = await flow.request(subject, "approver")
    assert refused.status_code == 409
    assert refused.json()["code"] == "training_required"
    await flow.train(subject)
    await flow.grant(subject, "approver")
    assert (await flow.check(subject, "transfer:approve"))["allowed"]


async def test_grant_expires(flow: Flow) -> None:
    subject = await flow.new_staff()
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
    maker, checker = await flow.new_staff(), await flow.new_staff()
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
    identity = await flow.service("identity")

    async def execute() -> httpx.Response:
        return await flow.client.post(f"{BASE}/internal/approvals/{approval_id}/execute", json=body, headers=identity)

    results = await asyncio.gather(*(execute() for _ in range(8)))
    assert sorted(r.status_code for r in results) == [200] + [409] * 7
    winner = next(r for r in results if r.status_code == 200)
    assert winner.json()["approved_by"] == [checker]
    again = await execute()
    assert again.json()["code"] == "approval_already_executed"


async def test_kit_client_sees_a_suspension_within_the_stated_bound(flow: Flow) -> None:
    """A service's cached decision lasts at most permission_cache_seconds; permissions itself is immediate."""
    subject = await flow.new_staff()
    await flow.grant(subject, "risk_analyst")
    cache_seconds = 1.0
    # The vault service's client, as the kit's app factory builds it (client-credentials token).
    token_http = httpx.AsyncClient(base_url=flow.gateway_url, timeout=10)
    client = ServiceClient(flow.gateway_url, token_provider=ClientCredentialsProvider(token_http, "vault", SECRET))
    checker = PermissionClient(client, cache_seconds=cache_seconds)
    try:
        assert (await checker.check(subject, "risk:modify")).allowed
        suspended = await flow.client.post(
            f"{BASE}/internal/subjects/{subject}/suspension",
            json={"reason": "alert: rule edits at 3am"},
            headers=await flow.service("risk"),
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
        await token_http.aclose()


async def test_another_service_enforces_the_decisions(flow: Flow) -> None:
    """identity's staff routes use kit.permissions.RequirePermission, answered by this service."""
    officer = await flow.new_staff()
    somebody = f"{ID}/staff/accounts/{uuid.uuid4()}"
    denied = await flow.client.get(somebody, headers=flow.staff(officer))
    assert denied.status_code == 403
    assert denied.json()["code"] == "permission_denied"
    assert denied.json()["detail"] == "no active grant gives account:read"
    await flow.grant(officer, "customer_manager")
    # identity may reuse its cached "deny" for permission_cache_seconds: the stated bound.
    await asyncio.sleep(IDENTITY_CACHE_SECONDS)
    passed = await flow.client.get(somebody, headers=flow.staff(officer))
    assert passed.status_code == 404  # past the permission gate: there is no such account
