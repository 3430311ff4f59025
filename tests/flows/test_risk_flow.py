"""Risk end to end through the gateway with the real identity (R-II.2.2 and a freeze).

The whole suite runs over real HTTP. The customer registers and signs in through the gateway
from a Beijing address (the gateway trusts the test client as a proxy, so X-Forwarded-For
carries the customer's address; identity's offline geo table places the RFC 5737 ranges:
192.0.2.0/24 Beijing, 198.51.100.0/24 Shanghai). The bank's core system (`core-banking`,
registered with identity's own `register_client`, as its CLI does) scores transfers. Service
clients get the scopes of the cross-helper contracts the same way.
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
from sqlalchemy import select

from services.identity.tokens.clients import register_client
from services.risk.models import Alert, outbox
from tests.identity.support import PASSWORD, bearer, customer_data
from tests.support.database import TestDatabases
from tests.support.live import LiveSuite, live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

ID = "/v1/identity"
RISK = "/v1/risk"
SECRET = "dev-insecure-service-client-secret"
BEIJING = "192.0.2.10"
SHANGHAI_REGION = "CN-SH"
SCOPES = {
    "identity": ["risk:score", "incidents:report", "identity:revocations"],
    "risk": ["identity:accounts", "identity:notify", "identity:risk_level", "incidents:report"],
    "gateway": ["identity:revocations"],
    "core-banking": ["risk:score", "risk:labels"],
    "incidents": ["risk:lists", "risk:read"],
}
OVERRIDES: dict[str, dict[str, Any]] = {
    "gateway": {
        "rate_limit_classes": {"login": "1000/minute", "otp": "1000/minute"},
        "trusted_proxies": ["127.0.0.1/32"],
    },
}


@dataclass
class Running:
    suite: LiveSuite
    apps: dict[str, FastAPI]

    @property
    def gateway_url(self) -> str:
        return self.suite.gateway_url


def capturing(
    factories: dict[str, Callable[[Mapping[str, str]], FastAPI]], apps: dict[str, FastAPI]
) -> dict[str, Callable[[Mapping[str, str]], FastAPI]]:
    def wrap(name: str, factory: Callable[[Mapping[str, str]], FastAPI]) -> Callable[[Mapping[str, str]], FastAPI]:
        def build(urls: Mapping[str, str]) -> FastAPI:
            apps[name] = factory(urls)
            return apps[name]

        return build

    return {name: wrap(name, factory) for name, factory in factories.items()}


@pytest.fixture(scope="module")
async def suite(test_databases: TestDatabases) -> AsyncIterator[Running]:
    url = await test_databases.clone("suite_risk_flow")
    apps: dict[str, FastAPI] = {}
    async with live_suite(capturing(suite_factories(url, overrides=OVERRIDES), apps)) as running:
        identity = apps["identity"]
        async with identity.state.database.sessionmaker() as session:
            for client_id, scopes in SCOPES.items():
                await register_client(session, identity.state.identity, client_id, SECRET, scopes)
            await session.commit()
        yield Running(running, apps)


@pytest.fixture
async def gw(suite: Running) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=suite.gateway_url, timeout=20) as client:
        yield client


async def service_token(gw: httpx.AsyncClient, client_id: str) -> dict[str, str]:
    response = await gw.post(
        f"{ID}/public/oauth/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": SECRET},
    )
    assert response.status_code == 200, response.text
    return bearer(str(response.json()["access_token"]))


async def latest_code(gw: httpx.AsyncClient, account_id: str, template: str) -> str:
    """The latest code sent to the account, from identity's development sink (the SMS provider stand-in)."""
    import re

    headers = await service_token(gw, "risk")
    for _ in range(50):
        response = await gw.get(f"{ID}/internal/dev/notifications", params={"account_id": account_id}, headers=headers)
        assert response.status_code == 200, response.text
        for message in response.json():
            if message["template"].startswith(template):
                found = re.search(r"\b(\d{6})\b", message["body"])
                assert found
                return found.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {template} message")


async def customer_from_beijing(gw: httpx.AsyncClient) -> tuple[str, dict[str, Any]]:
    """Register, verify the phone and sign in from a Beijing address; returns the account and tokens."""
    where = {"X-Forwarded-For": BEIJING}
    data = customer_data()
    registered = await gw.post(f"{ID}/public/register", json=data, headers=where)
    assert registered.status_code == 201, registered.text
    account_id = str(registered.json()["account_id"])
    code = await latest_code(gw, account_id, "code.verify:sms")
    verified = await gw.post(
        f"{ID}/public/register/verify", json={"account_id": account_id, "channel": "sms", "code": code}, headers=where
    )
    assert verified.status_code == 200, verified.text
    login = await gw.post(
        f"{ID}/public/login",
        json={"identifier": data["phone"], "password": PASSWORD, "device_id": "flow-phone"},
        headers=where,
    )
    assert login.status_code == 200, login.text
    answer: dict[str, Any] = login.json()
    if answer["status"] == "mfa_required":
        sent = await gw.post(
            f"{ID}/public/login/challenge/send",
            json={"challenge": answer["challenge"], "channel": "sms"},
            headers=where,
        )
        assert sent.status_code == 200, sent.text
        code = await latest_code(gw, account_id, "code.login")
        done = await gw.post(
            f"{ID}/public/login/challenge/verify",
            json={"challenge": answer["challenge"], "method": "sms", "code": code},
            headers=where,
        )
        assert done.status_code == 200, done.text
        answer = done.json()
    assert "access_token" in answer, answer
    return account_id, answer


def transfer(customer_id: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "transaction_id": str(uuid.uuid4()),
        "account_id": "6222" + uuid.uuid4().hex[:12],
        "customer_id": customer_id,
        "payee": "6217" + uuid.uuid4().hex[:12],
        "amount_minor": 20_000,
        "currency": "CNY",
        "occurred_at": (datetime.now(UTC) + timedelta(minutes=5)).isoformat(),
        "kind": "transfer",
        "channel": "mobile",
        "ip": "198.51.100.20",
        "device_id": "flow-phone",
        "region": SHANGHAI_REGION,
    }
    body.update(fields)
    return body


async def test_a_login_in_beijing_then_a_transfer_from_shanghai_within_15_minutes_steps_up(
    gw: httpx.AsyncClient,
) -> None:
    account_id, _ = await customer_from_beijing(gw)
    core = await service_token(gw, "core-banking")
    response = await gw.post(f"{RISK}/internal/transactions/score", json=transfer(account_id), headers=core)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["decision"] == "step_up"
    assert "login_elsewhere" in {r["code"] for r in body["reasons"]}
    # A client without the scope is refused.
    other = await service_token(gw, "vault")
    refused = await gw.post(f"{RISK}/internal/transactions/score", json=transfer(account_id), headers=other)
    assert refused.status_code == 403


async def test_a_score_above_90_freezes_the_account_and_leaves_an_alert_and_a_case_request(
    gw: httpx.AsyncClient, suite: Running
) -> None:
    account_id, tokens = await customer_from_beijing(gw)
    customer = bearer(tokens["access_token"])
    assert (await gw.get(f"{ID}/me/account", headers=customer)).status_code == 200
    # incidents has put a mule wallet on the shared block list.
    mule = "wallet-" + uuid.uuid4().hex[:10]
    listed = await gw.post(
        f"{RISK}/internal/lists/payee/entries",
        json={"value": mule, "verdict": "block", "reason": "mule wallet", "reference": "INC-7"},
        headers=await service_token(gw, "incidents"),
    )
    assert listed.status_code == 201, listed.text
    core = await service_token(gw, "core-banking")
    body = transfer(
        account_id, payee=mule, kind="crypto_withdrawal", amount_minor=12_000_000, region="CN-BJ", ip=BEIJING
    )
    response = await gw.post(f"{RISK}/internal/transactions/score", json=body, headers=core)
    assert response.status_code == 200, response.text
    scored = response.json()
    assert scored["score"] >= 90, scored
    assert scored["decision"] == "freeze"
    # identity freezes the account (risk's outbox, through the gateway); the customer's tokens stop working.
    for _ in range(100):
        if (await gw.get(f"{ID}/me/account", headers=customer)).status_code == 401:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the frozen customer's token still works")
    risk: FastAPI = suite.apps["risk"]
    table = outbox.messages
    async with risk.state.database.sessionmaker() as session:
        alert = await session.scalar(select(Alert).where(Alert.transaction_id == body["transaction_id"]))
        report = (
            await session.execute(
                select(table).where(table.c.idempotency_key == f"risk-report:{body['transaction_id']}")
            )
        ).one()
    assert alert is not None
    assert alert.grade == 1
    assert report.path == "/v1/incidents/internal/reports"
    assert report.payload["type"] == "fraudulent_transaction"
    assert report.payload["customer_id"] == account_id
    # identity answered the freeze before the outbox recorded the delivery: wait for the record (bounded).
    freeze = ""
    for _ in range(100):
        async with risk.state.database.sessionmaker() as session:
            freeze = (
                await session.execute(
                    select(table.c.status).where(table.c.idempotency_key == f"risk-freeze:{body['transaction_id']}")
                )
            ).scalar_one()
        if freeze == "delivered":
            break
        await asyncio.sleep(0.1)
    assert freeze == "delivered"
