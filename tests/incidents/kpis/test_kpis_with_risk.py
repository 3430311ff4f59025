"""The KPI page with the real risk service behind the real gateway: alerts per analyst arrive."""

from __future__ import annotations

import contextlib
import csv
import io
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from services.risk.models import Alert
from tests.flows.test_incidents_flow import capturing
from tests.identity.support import bearer
from tests.incidents import people
from tests.support.database import TestDatabases
from tests.support.live import live_suite
from tests.support.suite import suite_factories

pytestmark = pytest.mark.flow

OVERRIDES: dict[str, dict[str, Any]] = {
    "gateway": {"rate_limit_classes": {"login": "1000/minute", "otp": "1000/minute"}},
}
START = datetime(2019, 5, 1, tzinfo=UTC)


@pytest.fixture
async def suite(test_databases: TestDatabases) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, FastAPI], str]]:
    url = await test_databases.clone("kpis_flow")
    apps: dict[str, FastAPI] = {}
    services = ("identity", "permissions", "risk", "incidents")
    factories = capturing(suite_factories(url, services=services, overrides=OVERRIDES), apps)
    async with contextlib.AsyncExitStack() as stack:
        live = await stack.enter_async_context(live_suite(factories))
        client = await stack.enter_async_context(httpx.AsyncClient(base_url=live.gateway_url, timeout=20))
        admin, admin_token = await people.staff(client, apps["identity"])
        await people.make_admin(apps["permissions"], admin)
        reader, token = await people.staff(client, apps["identity"])
        await people.grant_role(client, reader, token, admin_token, "incident_responder")
        yield client, apps, token


async def test_the_kpi_page_carries_risks_alerts_per_analyst(
    suite: tuple[httpx.AsyncClient, dict[str, FastAPI], str],
) -> None:
    client, apps, token = suite
    analyst = str(uuid.uuid4())
    inside = START + timedelta(hours=3)
    async with apps["risk"].state.database.sessionmaker() as session, session.begin():
        for status, resolution, assignee in (
            ("resolved", "fraud", analyst),
            ("resolved", "genuine", analyst),
            ("assigned", None, analyst),
            ("open", None, None),
        ):
            session.add(
                Alert(
                    category="transaction",
                    grade=2,
                    score=85.0,
                    summary="kpi flow",
                    status=status,
                    resolution=resolution,
                    assignee=assignee,
                    resolved_by=analyst if resolution else None,
                    created_at=inside,
                )
            )
    params = {"from": START.isoformat(), "to": (START + timedelta(days=1)).isoformat()}
    response = await client.get("/v1/incidents/staff/kpis", params=params, headers=bearer(token))
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["sources_unavailable"] == []
    assert report["alerts_per_analyst"] == [
        {"analyst": analyst, "alerts": 3, "open": 1, "resolved": 2, "outcomes": {"fraud": 1, "genuine": 1}},
        {"analyst": None, "alerts": 1, "open": 1, "resolved": 0, "outcomes": {}},
    ]
    as_csv = await client.get("/v1/incidents/staff/kpis", params={**params, "format": "csv"}, headers=bearer(token))
    lines = list(csv.reader(io.StringIO(as_csv.text)))
    assert ["alerts_per_analyst", f"{analyst}/outcome/fraud", "1"] in lines
    assert ["alerts_per_analyst", "(unassigned)/open", "1"] in lines
    assert not [line for line in lines if line[0] == "source_unavailable"]
