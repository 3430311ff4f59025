"""The app factory's plumbing: problems for bad input, the request-owned transaction, probes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text

from kit.db import DBSession
from kit.errors import Conflict
from kit.migrations import alembic_config
from services.risk.app import create
from tests.support.suite import service_settings
from tests.support.tokens import TestIssuer

RISK_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "risk" / "migrations"
SECRET_IN_ERROR = "postgresql://admin:hunter2@db"
RISK_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "risk" / "migrations"


class Payment(BaseModel):
    amount_minor: int = Field(gt=0)
    payee: str = Field(min_length=1, max_length=40)


class Exploding(Conflict):
    code = "demo_conflict"


def demo_router() -> APIRouter:
    router = APIRouter()

    @router.post("/demo/payments")
    async def pay(payment: Payment, session: DBSession) -> dict[str, int]:
        """Writes a row, then fails if the payee says so: the write must not survive."""
        await session.execute(text("CREATE TABLE IF NOT EXISTS risk.demo_write (payee text)"))
        await session.execute(text("INSERT INTO risk.demo_write VALUES (:p)"), {"p": payment.payee})
        if payment.payee == "conflict":
            raise Exploding("payee is blocked")
        if payment.payee == "crash":
            raise RuntimeError(f"driver said {SECRET_IN_ERROR}")
        count = (await session.execute(text("SELECT count(*) FROM risk.demo_write"))).scalar_one()
        return {"rows": int(count)}

    @router.post("/demo/deferred/{value}")
    async def deferred(value: int, session: DBSession) -> dict[str, str]:
        """The unique check is deferred to COMMIT, i.e. after the endpoint has returned."""
        await session.execute(
            text(
                "CREATE TABLE IF NOT EXISTS risk.demo_unique (v int,"
                " CONSTRAINT demo_unique_v UNIQUE (v) DEFERRABLE INITIALLY DEFERRED)"
            )
        )
        await session.execute(text("INSERT INTO risk.demo_unique VALUES (:v)"), {"v": value})
        return {"status": "saved"}

    return router


@pytest.fixture
async def app(fresh_database_url: str) -> AsyncIterator[FastAPI]:
    application = create(service_settings("risk", fresh_database_url))
    application.include_router(demo_router())
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://risk") as c:
        yield c


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/demo/payments", content=b'{"amount_minor": 1,', headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "malformed_body"
    assert body["status"] == 400
    assert body["type"].endswith(":malformed_body")
    assert body["request_id"] == response.headers["x-request-id"]


async def test_validation_errors_name_fields_but_never_echo_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/demo/payments", json={"amount_minor": -5, "payee": "x" * 41})
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "validation_failed"
    assert {tuple(e["loc"]) for e in body["errors"]} == {("body", "amount_minor"), ("body", "payee")}
    assert "x" * 41 not in response.text


async def test_an_unexpected_error_is_a_500_problem_without_details(client: httpx.AsyncClient) -> None:
    response = await client.post("/demo/payments", json={"amount_minor": 1, "payee": "crash"})
    assert response.status_code == 500
    assert response.json()["code"] == "internal_error"
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text


async def test_a_value_the_database_refuses_is_a_422_problem_not_a_500(client: httpx.AsyncClient) -> None:
    # The demo route is added past the app factory's input gate: the database itself refuses the NUL.
    response = await client.post("/demo/payments", json={"amount_minor": 1, "payee": "x\u0000y"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "invalid_value"


async def test_a_failed_request_leaves_no_partial_write(client: httpx.AsyncClient) -> None:
    ok = await client.post("/demo/payments", json={"amount_minor": 1, "payee": "first"})
    assert ok.json() == {"rows": 1}
    refused = await client.post("/demo/payments", json={"amount_minor": 1, "payee": "conflict"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "demo_conflict"
    crashed = await client.post("/demo/payments", json={"amount_minor": 1, "payee": "crash"})
    assert crashed.status_code == 500
    again = await client.post("/demo/payments", json={"amount_minor": 1, "payee": "second"})
    assert again.json() == {"rows": 2}


async def test_a_failure_at_commit_is_reported_not_hidden_behind_a_200(client: httpx.AsyncClient) -> None:
    first = await client.post("/demo/deferred/7")
    assert first.json() == {"status": "saved"}
    duplicate = await client.post("/demo/deferred/7")
    assert duplicate.status_code == 409
    assert duplicate.json()["code"] == "conflict"
    assert "demo_unique" not in duplicate.text


async def test_unknown_route_and_wrong_method_are_problems(client: httpx.AsyncClient) -> None:
    missing = await client.get("/nowhere")
    assert (missing.status_code, missing.json()["code"]) == (404, "not_found")
    wrong = await client.delete("/healthz")
    assert (wrong.status_code, wrong.json()["code"]) == (405, "method_not_allowed")


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    metrics = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/healthz",service="risk",status="200"}' in metrics


async def _readiness_at_revision(database_url: str, revision: str) -> httpx.Response:
    application = create(service_settings("risk", database_url))
    async with application.router.lifespan_context(application):
        engine = application.state.database.engine
        async with engine.begin() as connection:
            await connection.execute(text("UPDATE risk.alembic_version SET version_num = :r"), {"r": revision})
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as c:
            return await c.get("/readyz")


async def test_readiness_reports_migrations_behind(fresh_database_url: str) -> None:
    history = ScriptDirectory.from_config(alembic_config(RISK_MIGRATIONS, "", "risk"))
    first = next(script.revision for script in history.walk_revisions() if script.down_revision is None)
    response = await _readiness_at_revision(fresh_database_url, first)
    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "migrations": "behind"}


async def test_a_database_migrated_by_the_next_release_keeps_this_release_ready(fresh_database_url: str) -> None:
    """The pre-sync migration of release N+1 must not turn release N's pods unready."""
    response = await _readiness_at_revision(fresh_database_url, "f00dfacefeed")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "migrations": "ahead"}


async def test_an_unreachable_database_is_not_ready_and_answers_503() -> None:
    application = create(service_settings("risk", "postgresql+asyncpg://nobody@127.0.0.1:9/none"))
    application.include_router(demo_router())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as c:
            response = await c.get("/readyz")
            live = await c.get("/healthz")
            write = await c.post("/demo/payments", json={"amount_minor": 1, "payee": "x"})
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable"
    assert live.status_code == 200
    assert write.status_code == 503
    assert write.json()["code"] == "database_unavailable"
    assert write.headers["retry-after"] == "2"


async def test_routers_are_authenticated_by_default(fresh_database_url: str) -> None:
    router = APIRouter()

    @router.get("/customer/profile")
    async def profile() -> dict[str, str]:
        return {"ok": "yes"}

    from kit.app import ServiceSpec, create_app
    from services.risk.models import Base

    application = create_app(
        ServiceSpec(
            settings=service_settings("risk", fresh_database_url),
            title="t",
            description="d",
            metadata=Base.metadata,
            migrations_dir=RISK_MIGRATIONS,
            routers=[router],
        )
    )
    issuer = TestIssuer()
    async with application.router.lifespan_context(application):
        issuer.install(application)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as c:
            anonymous = await c.get("/customer/profile")
            signed = await c.get("/customer/profile", headers=issuer.headers(kind="customer"))
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert signed.json() == {"ok": "yes"}


async def test_a_dropped_database_connection_fails_one_request_cleanly_then_recovers(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    """A pooled connection killed under the service (failover, restart) costs at most one clean, retryable
    503 (when the kill races the request: the event loop has not read the news yet), never a 500."""
    assert (await client.post("/demo/payments", json={"amount_minor": 1, "payee": "before"})).status_code == 200
    engine = app.state.database.engine
    async with engine.connect() as connection:
        await connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'risk' AND pid <> pg_backend_pid()"
            )
        )
    statuses = []
    for payee in ("during-1", "during-2", "after"):
        response = await client.post("/demo/payments", json={"amount_minor": 1, "payee": payee})
        statuses.append(response.status_code)
        if response.status_code != 200:
            assert response.json()["code"] == "database_unavailable"
    assert statuses[-1] == 200
    assert 500 not in statuses


def test_migration_state_reads_at_ahead_and_behind() -> None:
    from kit.health import migration_state

    known = {"a", "b"}
    assert migration_state({"b"}, {"b"}, known) == "ok"
    assert migration_state({"c"}, {"b"}, known) == "ahead"  # a revision of the next release
    assert migration_state({"a"}, {"b"}, known) == "behind"
    assert migration_state(set(), {"b"}, known) == "behind"  # never migrated
