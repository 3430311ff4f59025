"""A request is one server span and each SQL statement one client span, in the caller's trace; a failure never
puts values in a trace."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.telemetry import instrument_engine
from services.risk.app import create as create_risk
from tests.support.database import TestDatabases
from tests.support.suite import service_settings

PHONE = "13812345678"


@pytest.fixture
async def traced() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@pytest.fixture
async def engine(
    test_databases: TestDatabases, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> AsyncIterator[AsyncEngine]:
    url = await test_databases.clone("telemetry")
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.execute(text("CREATE TABLE contact (phone text UNIQUE, CHECK (phone <> 'forbidden'))"))
    instrument_engine(engine, traced[0])
    yield engine
    await engine.dispose()


def sql_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    spans = exporter.get_finished_spans()
    return [span for span in spans if span.instrumentation_scope and span.instrumentation_scope.name == "kit.sql"]


async def test_each_statement_is_a_client_span_in_the_callers_trace(
    engine: AsyncEngine, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = traced
    with provider.get_tracer("test").start_as_current_span("request") as request:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO contact VALUES (:phone)"), {"phone": PHONE})
            await connection.execute(text("SELECT phone FROM contact"))
    spans = sql_spans(exporter)
    database = make_url(str(engine.url)).database
    assert [span.name for span in spans] == [f"INSERT {database}", f"SELECT {database}"]
    for span in spans:
        assert span.kind is SpanKind.CLIENT
        assert span.parent is not None
        assert span.parent.span_id == request.get_span_context().span_id
        attributes = dict(span.attributes or {})
        assert attributes["db.system.name"] == "postgresql"
        assert attributes["db.namespace"] == database
        assert attributes.get("server.address") == engine.url.host  # None over a Unix socket
        assert attributes["db.operation.name"] == span.name.split()[0]
        # The statement as sent, with placeholders: the bound value is not in the span.
        assert PHONE not in str(attributes["db.query.text"])
        assert span.status.status_code is StatusCode.UNSET


# PostgreSQL's message for these quotes the value ("Key (phone)=(...)", "Failing row contains (...)").
@pytest.mark.parametrize("value", [PHONE, "forbidden"])
async def test_a_failed_statement_is_marked_by_error_type_without_the_databases_message(
    engine: AsyncEngine, traced: tuple[TracerProvider, InMemorySpanExporter], value: str
) -> None:
    exporter = traced[1]
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO contact VALUES (:phone)"), {"phone": PHONE})
    exporter.clear()
    with pytest.raises(IntegrityError) as raised:
        async with engine.begin() as connection:
            await connection.execute(text("INSERT INTO contact VALUES (:phone)"), {"phone": value})
    assert value in str(raised.value)  # what the contrib instrumentation put in the span status
    (span,) = sql_spans(exporter)
    assert span.status.status_code is StatusCode.ERROR
    # The exception's type only (SQLAlchemy 2.0 hands the listener its IntegrityError, 2.1 the driver's).
    description = span.status.description or ""
    assert re.fullmatch(r"[A-Za-z]+Error", description)
    assert dict(span.attributes or {})["error.type"] == description
    for text_in_span in (span.name, description, *map(str, (span.attributes or {}).values())):
        assert value not in text_in_span


async def test_no_span_outside_a_sampled_trace_costs_a_recording(
    engine: AsyncEngine, traced: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    exporter = traced[1]
    unsampled = trace.NonRecordingSpan(
        trace.SpanContext(trace_id=1, span_id=2, is_remote=True, trace_flags=trace.TraceFlags(0))
    )
    with trace.use_span(unsampled):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    assert sql_spans(exporter) == []


# --- The server span of a service (FastAPI's own telemetry, configured by kit.telemetry.server_telemetry)

SECRET_IN_ERROR = "postgresql://admin:hunter2@db"
TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
PARENT_SPAN_ID = 0x00F067AA0BA902B7


def traced_router() -> APIRouter:
    router = APIRouter()

    @router.get("/demo/cases/{case_id}")
    async def case(case_id: int) -> dict[str, int]:
        return {"case": case_id}

    @router.post("/demo/crash")
    async def crash() -> None:
        raise RuntimeError(f"driver said {SECRET_IN_ERROR} for {PHONE}")

    return router


@pytest.fixture
async def service(fresh_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    application = create_risk(service_settings("risk", fresh_database_url))
    application.include_router(traced_router())
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False, client=("203.0.113.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://risk") as client:
            yield client


def server_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.kind is SpanKind.SERVER]


async def test_a_request_is_one_server_span_named_by_its_route_in_the_callers_trace(
    service: httpx.AsyncClient, clear_spans: InMemorySpanExporter
) -> None:
    traceparent = f"00-{TRACE_ID:032x}-{PARENT_SPAN_ID:016x}-01"
    response = await service.get(
        f"/demo/cases/42?phone={PHONE}", headers={"traceparent": traceparent, "user-agent": "BankApp/1.0"}
    )
    assert response.status_code == 200
    (span,) = server_spans(clear_spans)
    assert span.name == "GET /demo/cases/{case_id}"
    assert span.context is not None
    assert span.context.trace_id == TRACE_ID
    assert span.parent is not None
    assert span.parent.span_id == PARENT_SPAN_ID
    attributes = dict(span.attributes or {})
    assert attributes["http.route"] == "/demo/cases/{case_id}"
    assert attributes["http.request.method"] == "GET"
    assert attributes["http.response.status_code"] == 200
    # No per-operation spans (dependencies, endpoint, serialisation) in the trace.
    assert [s.name for s in clear_spans.get_finished_spans()] == ["GET /demo/cases/{case_id}"]
    # The client's address, its user agent and the query string are not recorded.
    values = " ".join(map(str, attributes.values()))
    for typed_by_the_client in ("203.0.113.7", "BankApp", PHONE):
        assert typed_by_the_client not in values


async def test_probes_and_scrapes_are_not_traced(service: httpx.AsyncClient, clear_spans: InMemorySpanExporter) -> None:
    for path in ("/healthz", "/metrics"):
        assert (await service.get(path)).status_code == 200
    assert server_spans(clear_spans) == []


async def test_a_failed_request_is_marked_by_the_exceptions_type_only(
    service: httpx.AsyncClient, clear_spans: InMemorySpanExporter
) -> None:
    response = await service.post("/demo/crash")
    assert response.status_code == 500
    (span,) = server_spans(clear_spans)
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "RuntimeError"
    assert attributes["http.response.status_code"] == 500
    recorded = [span.status.description or "", *map(str, attributes.values())]
    recorded += [str(event.attributes) for event in span.events]
    for text_in_span in recorded:
        assert "hunter2" not in text_in_span
        assert PHONE not in text_in_span
