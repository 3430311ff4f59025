"""OpenTelemetry tracing: provider, exporter and instrumentation.

The tracer provider is process-wide. It exports over OTLP/HTTP when an
endpoint is configured and exports nothing otherwise (spans are still created,
so trace context propagates and logs carry trace ids).

A service's server span comes from FastAPI's own telemetry (FastAPI 0.163+):
one SERVER span per request, named ``METHOD /route/template`` once routing has
chosen the route, the W3C context taken from ``traceparent``, a failure marked
by its exception type only. Its per-operation spans (dependencies, endpoint,
serialisation), its metrics (``/metrics`` has ours) and its logs (exception
messages and stack traces, which can quote personal data) are off. The
contrib ``opentelemetry-instrumentation-fastapi`` it replaces cost 0.9 M
instructions per request (a password login is 7.3 M), mostly matching the
request against every route a second time to name the span, and it recorded
the client's address and user agent on every span. The query string is left
out of the span as well (:class:`_ServerSpanTracer`): a client can put a token
or a phone number there, and the gateway's access log leaves it out too.

SQL statements get their spans from :class:`StatementSpans`, not from the
contrib SQLAlchemy instrumentation. Measured on a traced session of a
checkout and two statements, contrib cost 0.48 ms of event-loop CPU per
request (a ``connect`` span per checkout, the whole statement split into
tokens for a span name, attributes set one by one, URL attributes rebuilt per
statement); that was a tenth of a password login's non-argon2 work. And its
error status quotes the database's message, which for a unique violation
holds the duplicated value: personal data in a trace backend.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence
from typing import Any, ClassVar
from weakref import WeakKeyDictionary

from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import Attributes
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext, ExecutionContext
from sqlalchemy.ext.asyncio import AsyncEngine

#: Paths whose spans are noise (probes and scrapes).
UNTRACED_PATHS = frozenset({"/healthz", "/metrics"})


def tracer_provider_for(service: str, otlp_endpoint: str | None) -> TracerProvider:
    """The process's provider: reuse one already installed (tests install theirs)."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if otlp_endpoint:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
    trace.set_tracer_provider(provider)
    return provider


def _untraced(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in UNTRACED_PATHS


#: Attributes FastAPI would record that may carry what a client typed (tokens, personal data).
_DROPPED_SERVER_ATTRIBUTES = frozenset({"url.query"})


class _ServerSpanTracer(trace.Tracer):
    """The tracer FastAPI's telemetry gets: spans start without the attributes above."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(  # noqa: PLR0917 (the OpenTelemetry API's signature)
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Sequence[trace.Link] | None = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        if attributes is not None and not _DROPPED_SERVER_ATTRIBUTES.isdisjoint(attributes):
            attributes = {key: value for key, value in attributes.items() if key not in _DROPPED_SERVER_ATTRIBUTES}
        return self._tracer.start_span(
            name, context, kind, attributes, links, start_time, record_exception, set_status_on_exception
        )

    def start_as_current_span(self, *args: Any, **kwargs: Any) -> Any:
        # FastAPI starts its server span with start_span; this serves its operation spans (off).
        return self._tracer.start_as_current_span(*args, **kwargs)


class _ServerSpanProvider(trace.TracerProvider):
    def __init__(self, provider: TracerProvider) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        tracer = self._provider.get_tracer(
            instrumenting_module_name, instrumenting_library_version, schema_url, attributes
        )
        return _ServerSpanTracer(tracer)


def server_telemetry(provider: TracerProvider) -> TelemetryConfig:
    """FastAPI's ``telemetry=`` for a service: one server span per request, nothing else (see above)."""
    return {
        "tracer_provider": _ServerSpanProvider(provider),
        "tracing": True,
        "operation_spans": False,
        "metrics": False,
        "logs": False,
        "auto_configure": False,
        "exclude": _untraced,
    }


def instrument_httpx(provider: TracerProvider) -> None:
    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=provider)


#: Where :class:`StatementSpans` keeps a statement's span on SQLAlchemy's execution context.
_SPAN_ATTRIBUTE = "_suite_statement_span"


def operation_of(statement: str) -> str:
    """A statement's operation for its span: its first word, upper case (``SELECT``, ``WITH``)."""
    # The head of the string is enough: splitting it all is not needed.
    words = statement[:32].split(None, 1)
    return words[0].upper() if words else ""


class StatementSpans:
    """One CLIENT span per SQL statement, with the stable database semantic conventions.

    The span is named ``"<OPERATION> <database>"`` (``SELECT suite``) and carries
    the statement text (bound parameters are never inlined, so no values), the
    system, the database and the server. A failed statement's status names the
    error type only, never the database's message. Statements run through
    SQLAlchemy get theirs from its events; :mod:`kit.statements` asks
    :meth:`of` the engine and calls :meth:`start` itself.
    """

    _by_engine: ClassVar[WeakKeyDictionary[Engine, StatementSpans]] = WeakKeyDictionary()

    def __init__(self, engine: Engine, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("kit.sql")
        url = engine.url
        self._database = url.database or engine.dialect.name
        # Built once: the SDK copies a dict passed at span start into its own attributes.
        self._static: dict[str, str | int] = {"db.system.name": engine.dialect.name, "db.namespace": self._database}
        if url.host:
            self._static["server.address"] = url.host
            self._static["server.port"] = url.port or 5432
        # Positional listeners: a named one makes SQLAlchemy build a dict of its arguments per statement.
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "handle_error", self._failed)
        StatementSpans._by_engine[engine] = self

    @classmethod
    def of(cls, engine: Engine) -> StatementSpans | None:
        """The spans of ``engine``'s statements, if it is instrumented."""
        return cls._by_engine.get(engine)

    def start(self, operation: str, statement: str) -> Span:
        """A started span for one statement (``operation``: :func:`operation_of` it)."""
        return self._tracer.start_span(
            f"{operation} {self._database}" if operation else self._database,
            kind=SpanKind.CLIENT,
            attributes={**self._static, "db.operation.name": operation, "db.query.text": statement},
        )

    @staticmethod
    def failed(span: Span, error_type: str) -> None:
        """End ``span`` as failed, naming the error's type only (never the database's message)."""
        span.set_attribute("error.type", error_type)
        span.set_status(Status(StatusCode.ERROR, error_type))
        span.end()

    def _before(  # noqa: PLR0917 (SQLAlchemy's positional event signature)
        self,
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        if context is None:
            return
        setattr(context, _SPAN_ATTRIBUTE, self.start(operation_of(statement), statement))

    def _after(  # noqa: PLR0917 (SQLAlchemy's positional event signature)
        self,
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None,
        executemany: bool,
    ) -> None:
        span = getattr(context, _SPAN_ATTRIBUTE, None)
        if span is not None:
            span.end()
            # An error while the rows are read comes after this: it must not end the span again.
            setattr(context, _SPAN_ATTRIBUTE, None)

    def _failed(self, failure: ExceptionContext) -> None:
        span = getattr(failure.execution_context, _SPAN_ATTRIBUTE, None)
        if span is None:
            return
        setattr(failure.execution_context, _SPAN_ATTRIBUTE, None)
        self.failed(span, type(failure.original_exception).__name__)


def instrument_engine(engine: AsyncEngine, provider: TracerProvider) -> StatementSpans:
    return StatementSpans(engine.sync_engine, provider)
