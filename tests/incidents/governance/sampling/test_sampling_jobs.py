"""Sampling audits against the real permissions and vault services through the real gateway.

Risk's ``GET /v1/risk/internal/decisions`` is built by another helper: here a
small fake risk HTTP server (below) answers it with the contract's shape,
behind the real gateway; nothing else is faked. Approvals, grants, training
records and vault access entries are written with the services' own code or
models as their routes would leave them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import select

from services.identity.tokens.clients import register_client
from services.permissions.approvals import service as approvals
from services.permissions.cli import bootstrap_admin
from services.permissions.models import ApprovalDecision, Grant, Role, TrainingRecord
from services.vault.models import audit_log as vault_audit_log
from tests.flows.test_permissions_flow import OVERRIDES, SECRET, Flow, capturing
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

AUDITS = "/v1/incidents/staff/audits"
NOW = datetime.now(UTC)
PERIOD = {"period_from": (NOW - timedelta(days=1)).isoformat(), "period_to": (NOW + timedelta(days=1)).isoformat()}


class FakeRisk:
    """Risk's decisions route, two pages, as the contract in docs/contracts.md describes it."""

    def __init__(self) -> None:
        self.decisions: list[dict[str, Any]] = []
        self.seen_authorization: list[str] = []

    def app(self, _urls: Mapping[str, str]) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/decisions")
        async def decisions(request: Request) -> dict[str, Any]:
            self.seen_authorization.append(request.headers.get("authorization", ""))
            assert request.query_params["kind"] == "transfer"
            threshold = int(request.query_params["min_amount_minor"])
            chosen = [d for d in self.decisions if d["amount_minor"] >= threshold]
            start = int(request.query_params.get("after") or 0)
            page = chosen[start : start + 2]
            more = start + 2 < len(chosen)
            return {"decisions": page, "cursor": str(start + 2) if more else None}

        return app


@pytest.fixture(scope="module")
async def suite(test_databases: TestDatabases) -> AsyncIterator[tuple[Flow, FakeRisk]]:
    url = await test_databases.clone("sampling")
    risk = FakeRisk()
    apps: dict[str, FastAPI] = {}
    factories = capturing(
        suite_factories(url, services=("identity", "permissions", "vault", "incidents"), overrides=OVERRIDES), apps
    )
    factories["risk"] = risk.app
    async with contextlib.AsyncExitStack() as stack:
        live = await stack.enter_async_context(live_suite(factories))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=live.gateway_url, timeout=30))
        identity = apps["identity"]
        async with identity.state.database.sessionmaker() as session:
            scopes = ["audit:verify", "audit:sample", "risk:read"]
            await register_client(session, identity.state.identity, "incidents", SECRET, scopes)
            await session.commit()
        flow = Flow(client=client, apps=apps, gateway_url=live.gateway_url)
        flow.admin = await flow.new_staff()
        async with apps["permissions"].state.database.sessionmaker() as session:
            await bootstrap_admin(session, flow.admin)
            await session.commit()
        apps["permissions"].state.policy_store.mark_stale()
        yield flow, risk


async def new_audit(flow: Flow, auditor: str) -> str:
    created = await flow.client.post(
        AUDITS,
        json={
            "title": "Monthly sampling",
            "scope": "Large transfers, unmasked reads, high-risk grants",
            "period_from": (NOW - timedelta(days=30)).date().isoformat(),
            "period_to": NOW.date().isoformat(),
            "auditors": [auditor],
            "criteria": ["M7 sampling"],
        },
        headers=flow.staff(auditor),
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def make_approval(flow: Flow, amount: int, *, approver: str | None) -> str:
    permissions = flow.apps["permissions"]
    async with permissions.state.database.sessionmaker() as session:
        approval = await approvals.create(
            session,
            permissions.state.settings,
            operation="transfer.execute",
            payload={"amount_minor": amount},
            requested_by="teller-1",
        )
        if approver is not None:
            session.add(ApprovalDecision(approval_id=approval.id, actor=approver, decision="approve", comment="ok"))
            approval.state = "approved"
        await session.commit()
        return str(approval.id)


async def test_large_transfers_without_a_complete_approval_become_findings(suite: tuple[Flow, FakeRisk]) -> None:
    flow, risk = suite
    auditor = await flow.new_staff()
    await flow.grant(auditor, "auditor")
    audit_id = await new_audit(flow, auditor)
    complete = await make_approval(flow, 60_000_000, approver="checker-1")
    pending = await make_approval(flow, 70_000_000, approver=None)

    def decision(txn: str, amount: int, approval_id: str | None, verdict: str = "allow") -> dict[str, Any]:
        return {
            "transaction_id": txn,
            "account_id": "acc-1",
            "customer_id": str(uuid.uuid4()),
            "kind": "transfer",
            "amount_minor": amount,
            "currency": "CNY",
            "occurred_at": NOW.isoformat(),
            "score": 10,
            "decision": verdict,
            "approval_id": approval_id,
        }

    risk.decisions = [
        decision("t-ok", 60_000_000, complete),
        decision("t-no-second-approver", 70_000_000, pending),
        decision("t-none", 55_000_000, None),
        decision("t-blocked", 90_000_000, None, verdict="block"),  # never executed
        decision("t-unknown", 50_000_000, str(uuid.uuid4())),
    ]
    run = await flow.client.post(
        f"{AUDITS}/{audit_id}/sampling-runs", json={"check": "large_transfers", **PERIOD}, headers=flow.staff(auditor)
    )
    assert run.status_code == 201, run.text
    assert (run.json()["sampled"], run.json()["exceptions"], run.json()["new_findings"]) == (4, 3, 3)
    assert all(header.startswith("Bearer ") for header in risk.seen_authorization)

    findings = (await flow.client.get(f"{AUDITS}/{audit_id}/findings", headers=flow.staff(auditor))).json()
    by_txn = {f["detail"]["transaction_id"]: f for f in findings}
    assert set(by_txn) == {"t-no-second-approver", "t-none", "t-unknown"}
    assert by_txn["t-no-second-approver"]["detail"]["code"] == "incomplete_approval"
    assert by_txn["t-none"]["rating"] == "critical"
    assert by_txn["t-unknown"]["detail"]["code"] == "approval_not_found"

    again = await flow.client.post(
        f"{AUDITS}/{audit_id}/sampling-runs", json={"check": "large_transfers", **PERIOD}, headers=flow.staff(auditor)
    )
    assert (again.json()["exceptions"], again.json()["new_findings"]) == (3, 0)
    report = await flow.client.get(f"{AUDITS}/{audit_id}/report", headers=flow.staff(auditor))
    assert [e["kind"] for e in report.json()["evidence"]] == ["sampling_run", "sampling_run"]


async def test_unmasked_reads_and_high_risk_grants(suite: tuple[Flow, FakeRisk]) -> None:
    flow, _ = suite
    auditor = await flow.new_staff()
    await flow.grant(auditor, "auditor")
    audit_id = await new_audit(flow, auditor)

    vault = flow.apps["vault"]
    async with vault.state.database.sessionmaker() as session:
        for purpose, fields, approval_id, approved_by in [
            ("fraud_investigation", ["phone"], None, []),  # fine: no approval needed
            ("", ["phone"], None, []),  # no purpose
            ("customer_service", ["bank_card"], None, []),  # approval required, none
            ("customer_service", ["bank_card"], "ap-1", ["reader-1"]),  # approved by the reader
        ]:
            await vault_audit_log.append(
                session,
                actor="reader-1",
                action="vault.decrypt",
                detail={"records": [str(uuid.uuid4())], "fields": fields, "purpose": purpose, "unmasked": True}
                | ({"approval_id": approval_id, "approved_by": approved_by} if approval_id else {}),
            )
        await session.commit()
    reads = await flow.client.post(
        f"{AUDITS}/{audit_id}/sampling-runs", json={"check": "unmasked_reads", **PERIOD}, headers=flow.staff(auditor)
    )
    assert reads.status_code == 201, reads.text
    assert (reads.json()["sampled"], reads.json()["exceptions"]) == (4, 3)

    permissions = flow.apps["permissions"]
    async with permissions.state.database.sessionmaker() as session:
        admin_role = (await session.execute(select(Role).where(Role.name == "admin"))).scalar_one()
        trained, untrained = str(uuid.uuid4()), str(uuid.uuid4())
        session.add(
            TrainingRecord(
                subject=trained,
                course="security-basics",
                completed_at=NOW - timedelta(days=10),
                expires_at=NOW + timedelta(days=300),
                recorded_by=flow.admin,
            )
        )
        session.add(Grant(subject=trained, role_id=admin_role.id, requested_by=trained, approved_by="checker-9"))
        session.add(Grant(subject=untrained, role_id=admin_role.id, requested_by=untrained, approved_by=untrained))
        await session.commit()
    grants = await flow.client.post(
        f"{AUDITS}/{audit_id}/sampling-runs", json={"check": "high_risk_grants", **PERIOD}, headers=flow.staff(auditor)
    )
    assert grants.status_code == 201, grants.text
    findings = (await flow.client.get(f"{AUDITS}/{audit_id}/findings", headers=flow.staff(auditor))).json()
    grant_codes = sorted(
        f["detail"]["code"]
        for f in findings
        if f["source"] == "sampling:high_risk_grants" and f["detail"]["subject"] == untrained
    )
    assert grant_codes == ["no_second_person", "no_training_record"]
    assert not [f for f in findings if f["detail"].get("subject") == trained]
    read_codes = sorted(f["detail"]["code"] for f in findings if f["source"] == "sampling:unmasked_reads")
    assert read_codes == ["missing_approval", "no_purpose", "no_second_person"]


async def test_the_sample_routes_need_their_scope(suite: tuple[Flow, FakeRisk]) -> None:
    flow, _ = suite
    params = {"since": PERIOD["period_from"], "until": PERIOD["period_to"]}
    refused = await flow.client.get(
        "/v1/vault/internal/audit-samples/unmasked-reads", params=params, headers=await flow.service("risk")
    )
    assert refused.status_code == 403
    grants = await flow.client.get(
        "/v1/permissions/internal/audit-samples/grants",
        params={"created_from": PERIOD["period_from"], "created_to": PERIOD["period_to"]},
        headers=await flow.service("vault"),
    )
    assert grants.status_code == 403
