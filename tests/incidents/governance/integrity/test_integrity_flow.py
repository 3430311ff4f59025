"""Suite-wide audit integrity through the gateway with the real services over real HTTP.

One service's chain (vault's) is tampered with the way an attacker with
database access would (triggers off, one entry edited); the staff route and
the operator command of incidents both report that service's first bad entry
and every other chain as intact. The incidents service's client is registered
with the ``audit:verify`` scope through identity's own ``register_client``
(the development registration of scopes is identity's to ship).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text

from services.identity.tokens.clients import register_client
from services.incidents.cli import verify_audit
from services.incidents.config import IncidentsSettings
from services.permissions.cli import bootstrap_admin
from services.vault.models import audit_log as vault_audit_log
from tests.flows.test_permissions_flow import OVERRIDES, SECRET, Flow, capturing
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

ROUTE = "/v1/incidents/staff/audit/verifications"
SERVICES = {"identity", "permissions", "vault", "risk", "incidents"}


@pytest.fixture(scope="module")
async def flow(test_databases: TestDatabases) -> AsyncIterator[tuple[Flow, str]]:
    url = await test_databases.clone("integrity_flow")
    apps: dict[str, FastAPI] = {}
    async with contextlib.AsyncExitStack() as stack:
        suite = await stack.enter_async_context(live_suite(capturing(suite_factories(url, overrides=OVERRIDES), apps)))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=suite.gateway_url, timeout=30))
        identity = apps["identity"]
        async with identity.state.database.sessionmaker() as session:
            await register_client(session, identity.state.identity, "incidents", SECRET, ["audit:verify"])
            await session.commit()
        flow = Flow(client=client, apps=apps, gateway_url=suite.gateway_url)
        flow.admin = await flow.new_staff()
        async with apps["permissions"].state.database.sessionmaker() as session:
            await bootstrap_admin(session, flow.admin)
            await session.commit()
        apps["permissions"].state.policy_store.mark_stale()
        yield flow, url


async def tamper_with_vault(flow: Flow) -> int:
    """Three entries appended to vault's chain, then the second one edited behind the triggers' back."""
    vault = flow.apps["vault"]
    async with vault.state.database.sessionmaker() as session:
        appended = [
            await vault_audit_log.append(session, actor="flow", action="record.read", target=f"r-{n}") for n in range(3)
        ]
        await session.commit()
    victim = appended[1].seq
    async with vault.state.database.engine.begin() as connection:
        await connection.execute(text("SET LOCAL session_replication_role = replica"))
        await connection.execute(
            text("UPDATE vault.audit_entry SET actor = 'nobody' WHERE seq = :seq"), {"seq": victim}
        )
    return victim


async def test_every_chain_is_verified_and_the_tampered_one_names_its_first_bad_entry(
    flow: tuple[Flow, str],
) -> None:
    suite, database_url = flow
    auditor = await suite.new_staff()
    await suite.grant(auditor, "auditor")
    clean = await suite.client.post(ROUTE, headers=suite.staff(auditor))
    assert clean.status_code == 201, clean.text
    assert clean.json()["ok"] is True
    assert {chain["service"] for chain in clean.json()["services"]} == SERVICES

    victim = await tamper_with_vault(suite)
    response = await suite.client.post(ROUTE, headers=suite.staff(auditor))
    assert response.status_code == 201, response.text
    report = response.json()
    assert report["ok"] is False
    chains = {chain["service"]: chain for chain in report["services"]}
    assert chains["vault"]["status"] == "tampered"
    assert chains["vault"]["first_bad"] == {"seq": victim, "problem": "altered_entry"}
    assert all(chains[name]["status"] == "ok" for name in SERVICES - {"vault"})

    # The operator command asks the same services through the same gateway.
    settings = IncidentsSettings(
        environment="test",
        database_url=SecretStr(database_url),
        gateway_url=suite.gateway_url,
        log_json=False,
    )
    assert await verify_audit(settings) == 1

    runs = await suite.client.get(ROUTE, headers=suite.staff(auditor))
    assert runs.status_code == 200
    assert [run["ok"] for run in runs.json()][:3] == [False, False, True]


async def test_staff_without_audit_verify_are_refused(flow: tuple[Flow, str]) -> None:
    suite, _ = flow
    someone = await suite.new_staff()
    response = await suite.client.post(ROUTE, headers=suite.staff(someone))
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_a_service_token_without_the_scope_cannot_ask_a_service_directly(flow: tuple[Flow, str]) -> None:
    suite, _ = flow
    response = await suite.client.get("/v1/vault/internal/audit/verification", headers=await suite.service("risk"))
    assert response.status_code == 403


async def test_a_range_of_a_services_chain_is_exported_as_audit_evidence(flow: tuple[Flow, str]) -> None:
    suite, _ = flow
    auditor = await suite.new_staff()
    await suite.grant(auditor, "auditor")
    audit = await suite.client.post(
        "/v1/incidents/staff/audits",
        json={
            "title": "Access grants",
            "scope": "permissions",
            "period_from": "2026-12-01",
            "period_to": "2026-12-31",
            "auditors": [auditor],
            "criteria": ["M4.2"],
        },
        headers=suite.staff(auditor),
    )
    assert audit.status_code == 201, audit.text
    exported = await suite.client.post(
        f"/v1/incidents/staff/audits/{audit.json()['id']}/evidence/exports",
        json={"service": "permissions", "seq_from": 1, "seq_to": 3, "description": "first grants"},
        headers=suite.staff(auditor),
    )
    assert exported.status_code == 201, exported.text
    evidence = exported.json()
    assert (evidence["kind"], evidence["service"], evidence["seq_from"], evidence["seq_to"]) == (
        "log_export",
        "permissions",
        1,
        3,
    )
    assert "3 audit entries exported; chain intact" in evidence["description"]
    assert len(evidence["sha256"]) == 64
