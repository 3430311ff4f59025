"""Logs carry trace ids and never carry secrets or personal data."""

from __future__ import annotations

import io
import json
import logging

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace

from kit.logging import REDACTED, RedactionFilter, TraceContextFilter, redact_text


def capture() -> tuple[logging.Logger, io.StringIO]:
    from pythonjsonlogger.json import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(TraceContextFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    logger = logging.getLogger(f"test-{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_messages_and_extra_fields_are_redacted() -> None:
    logger, stream = capture()
    logger.info(
        "login for 110105199003071234 phone 13812345678 mail li.lei@example.cn with Bearer eyJhbGciOi.eyJzdWIi.sig",
        extra={"password": "hunter2", "detail": {"national_id": "x", "attempt": 3}, "card": "6222 0212 3456 1234"},
    )
    record = json.loads(stream.getvalue())
    text = stream.getvalue()
    for secret in ("110105199003071234", "13812345678", "li.lei@example.cn", "eyJhbGciOi", "hunter2", "6222 0212"):
        assert secret not in text
    assert record["password"] == REDACTED
    assert record["detail"] == {"national_id": REDACTED, "attempt": 3}


def test_exceptions_are_redacted_too() -> None:
    logger, stream = capture()
    try:
        raise ValueError("duplicate key (phone)=(13912345678)")
    except ValueError:
        logger.exception("insert failed")
    assert "13912345678" not in stream.getvalue()
    assert "insert failed" in stream.getvalue()


def test_records_carry_the_trace_and_span_ids() -> None:
    logger, stream = capture()
    with trace.get_tracer("t").start_as_current_span("work") as span:
        logger.info("hello")
    record = json.loads(stream.getvalue())
    assert record["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert record["span_id"] == format(span.get_span_context().span_id, "016x")


def test_a_trace_id_holding_a_long_digit_run_is_not_mistaken_for_a_card_number() -> None:
    # A real trace id seen in CI: 15 decimal digits in a row between two hex letters.
    trace_id = int("94e8ee9251470d408026813534233cb8", 16)
    context = trace.SpanContext(trace_id=trace_id, span_id=0x1234567890123456, is_remote=False)
    logger, stream = capture()
    with trace.use_span(trace.NonRecordingSpan(context)):
        logger.info("hello")
    record = json.loads(stream.getvalue())
    assert record["trace_id"] == "94e8ee9251470d408026813534233cb8"
    assert record["span_id"] == "1234567890123456"


def test_a_request_id_chosen_by_a_client_is_still_redacted() -> None:
    logger, stream = capture()
    logger.info("hello", extra={"request_id": "13812345678"})
    assert "13812345678" not in stream.getvalue()


def _id_number() -> st.SearchStrategy[str]:
    return st.from_regex(r"[1-6]\d{16}[\dX]", fullmatch=True)


@given(prefix=st.text(alphabet=st.characters(blacklist_categories=["Nd"]), max_size=20), id_number=_id_number())
def test_any_national_id_in_any_text_is_redacted(prefix: str, id_number: str) -> None:
    assert id_number not in redact_text(f"{prefix}{id_number} tail")


@given(st.from_regex(r"1[3-9]\d{9}", fullmatch=True))
def test_any_mobile_number_is_redacted(phone: str) -> None:
    assert phone not in redact_text(f"call {phone} now")


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", max_size=60))
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact_text(text) == text
