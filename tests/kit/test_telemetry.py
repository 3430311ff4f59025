"""SQL statements get one span each, in the request's trace, and a failure never puts values in a trace."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import make_url, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from kit.telemetry import instrument_engine
from tests.support.database import TestDatabases

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
