"""Incident response end to end through the gateway, with the real identity and permissions services.

The whole suite runs over real HTTP. A customer reports their account taken
over: the incident opens, its playbook freezes the account and revokes every
session in identity through the incidents outbox, the gateway refuses the
customer's token, the customer's notification is queued for identity, the
on-call responder becomes incident commander, and once a responder verifies
it the incident is contained. A wave of risk reports makes one incident. An
SLA breach (the response worker run at a moved time) escalates to the manager
on call. Only the outside world is stood in for (identity's development
notification sink plays the SMS provider).

identity's notifications route is another helper's work: on this branch the
customer's notification is asserted queued in the incidents outbox in the
shape of docs/contracts.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from services.incidents.models import outbox
from services.incidents.worker import ResponseWorker
from tests.identity.support import bearer
from tests.incidents import people
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

INC = "/v1/incidents"
OVERRIDES: dict[str, dict[str, Any]] = {
    "gateway": {"rate_limit_classes": {"login": "1000/minute", "otp": "1000/minute"}, "revocation_poll_seconds": 0.2},
    "incidents": {"worker_poll_seconds": 0.1},
}


@dataclass
class Desk:
    client: httpx.AsyncClient
    apps: dict[str, FastAPI]
    responder: str
    responder_token: str

    def staff(self) -> dict[str, str]:
        return bearer(self.responder_token)

    async def until(self, probe: Callable[[], Any], what: str, seconds: float = 15.0) -> Any:
        """Poll a condition of the running suite (deliveries are asynchronous by design)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            value = await probe()
            if value:
                return value
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            await asyncio.sleep(0.05)

    async def steps(self, incident_id: str) -> dict[str, dict[str, Any]]:
        response = await self.client.get(f"{INC}/staff/incidents/{incident_id}/steps", headers=self.staff())
        assert response.status_code == 200, response.text
        return {s["action"]: s for s in response.json()}

    async def outbox_messages(self) -> list[Any]:
        table = outbox.messages
        async with self.apps["incidents"].state.database.sessionmaker() as session:
            return list((await session.execute(select(table))).all())


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
async def desk(test_databases: TestDatabases) -> AsyncIterator[Desk]:
    url = await test_databases.clone("incidents_flow")
    apps: dict[str, FastAPI] = {}
    async with contextlib.AsyncExitStack() as stack:
        suite = await stack.enter_async_context(live_suite(capturing(suite_factories(url, overrides=OVERRIDES), apps)))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=suite.gateway_url, timeout=20))
        admin, admin_token = await people.staff(client, apps["identity"])
        await people.make_admin(apps["permissions"], admin)
        responder, token = await people.staff(client, apps["identity"])
        await people.grant_role(client, responder, token, admin_token, "incident_responder")
        desk = Desk(client, apps, responder, token)
        now = datetime.now(UTC)
        for tier in ("primary", "manager"):
            shift = await client.post(
                f"{INC}/staff/oncall/shifts",
                json={
                    "tier": tier,
                    "staff_id": responder,
                    "starts_at": (now - timedelta(hours=1)).isoformat(),
                    "ends_at": (now + timedelta(hours=8)).isoformat(),
                },
                headers=desk.staff(),
            )
            assert shift.status_code == 201, shift.text
        yield desk


async def test_a_reported_takeover_is_frozen_revoked_told_verified_and_contained(desk: Desk) -> None:
    client = desk.client
    account, token = await people.customer(client)
    assert (await client.get("/v1/identity/me/account", headers=bearer(token))).status_code == 200

    reported = await client.post(
        f"{INC}/customer/takeover-reports", json={"description": "transfers I did not make"}, headers=bearer(token)
    )
    assert reported.status_code == 201, reported.text
    incident_id = reported.json()["incident_id"]

    async def refused() -> bool:
        return (await client.get("/v1/identity/me/account", headers=bearer(token))).status_code == 401

    await desk.until(refused, "the gateway to refuse the customer's token")

    async def contained_steps() -> dict[str, dict[str, Any]] | None:
        steps = await desk.steps(incident_id)
        wanted = {
            "freeze_account": "succeeded",
            "revoke_sessions": "succeeded",
            "assign_responder": "succeeded",
            "block_ip": "skipped",  # the customer named no IP
        }
        return steps if all(steps[action]["status"] == status for action, status in wanted.items()) else None

    await desk.until(contained_steps, "the containment steps to finish")
    notify = [m for m in await desk.outbox_messages() if m.path.endswith(f"/accounts/{account}/notifications")]
    assert len(notify) == 1
    assert notify[0].payload["event"] == "incident_update"
    assert notify[0].idempotency_key == f"incidents:{incident_id}:step:3:attempt:1:0"

    team = (await client.get(f"{INC}/staff/incidents/{incident_id}/team", headers=desk.staff())).json()
    assert [(m["role"], m["staff_id"]) for m in team] == [("incident_commander", desk.responder)]

    verified = await client.post(
        f"{INC}/staff/incidents/{incident_id}/transitions",
        json={"to": "verified", "reason": "call-back: the customer confirmed the takeover"},
        headers=desk.staff(),
    )
    assert verified.status_code == 200, verified.text
    assert verified.json()["state"] == "contained"
    clocks = {
        c["kind"]: c
        for c in (await client.get(f"{INC}/staff/incidents/{incident_id}/clocks", headers=desk.staff())).json()
    }
    assert clocks["verify"]["met_at"] is not None
    assert clocks["freeze"]["met_at"] is not None
    assert not clocks["verify"]["breached"]
    assert not clocks["freeze"]["breached"]
    timeline = (await client.get(f"{INC}/staff/incidents/{incident_id}/timeline", headers=desk.staff())).json()
    transitions = [(e["detail"]["to"], e["actor"]) for e in timeline if e["kind"] == "transition"]
    assert transitions == [("verified", desk.responder), ("contained", "incidents")]


async def test_a_wave_of_risk_reports_makes_one_incident(desk: Desk) -> None:
    await people.grant_scopes(desk.apps["identity"], "risk", ["incidents:report"])
    token = await people.service_token(desk.client, "risk")
    account = str(uuid.uuid4())

    async def report(i: int) -> httpx.Response:
        return await desk.client.post(
            f"{INC}/internal/reports",
            json={
                "source": "risk_decision",
                "type": "fraudulent_transaction",
                "level": None,
                "correlation_key": f"account:{account}",
                "summary": f"transfer {i} scored 95: freeze",
                "occurred_at": datetime.now(UTC).isoformat(),
                "account_id": account,
                "reference": {"kind": "risk_decision", "id": str(uuid.uuid4())},
                "observables": [{"kind": "payee", "value": "6222020000000001"}],
            },
            headers={**bearer(token), "Idempotency-Key": f"risk-decision-{uuid.uuid4()}"},
        )

    answers = await asyncio.gather(*(report(i) for i in range(6)))
    assert sorted(a.status_code for a in answers) == [200] * 5 + [201], [a.text for a in answers]
    assert len({a.json()["incident_id"] for a in answers}) == 1
    unscoped = await people.service_token(desk.client, "vault")
    refused = await desk.client.post(
        f"{INC}/internal/reports", json={}, headers={**bearer(unscoped), "Idempotency-Key": "k-0123456789"}
    )
    assert refused.status_code in (403, 422)


async def test_an_sla_breach_escalates_to_the_manager_on_call(desk: Desk) -> None:
    _account, token = await people.customer(desk.client)
    reported = await desk.client.post(f"{INC}/customer/takeover-reports", json={}, headers=bearer(token))
    incident_id = reported.json()["incident_id"]
    worker: ResponseWorker = desk.apps["incidents"].state.response_worker
    result = await worker.tick(datetime.now(UTC) + timedelta(minutes=11))  # nobody verified it in 10 minutes
    assert result.clocks_breached >= 1
    queue = (await desk.client.get(f"{INC}/staff/escalations", headers=desk.staff())).json()
    assert ("sla_breached", "verify", incident_id) in {(e["kind"], e["subject_ref"], e["incident_id"]) for e in queue}
    clocks = {
        c["kind"]: c
        for c in (await desk.client.get(f"{INC}/staff/incidents/{incident_id}/clocks", headers=desk.staff())).json()
    }
    assert clocks["verify"]["breached"] is True
    assert clocks["freeze"]["breached"] is False
