"""Logs carry trace ids and never carry secrets or personal data."""

from __future__ import annotations

import io
import json
import logging
import uuid

from hypothesis import given
from hypothesis import strategies as st
from opentelemetry import trace

from kit.context import is_generated_request_id, new_request_id, reset_request_id, set_request_id
from kit.logging import REDACTED, RedactionFilter, TraceContextFilter, redact_request_id, redact_text


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


#: Request ids as the suite makes them, and ones built to hold the digit runs the redaction hunts.
generated_ids = st.uuids(version=4).map(lambda u: u.hex)
digit_heavy_ids = st.text("0123456789", min_size=31, max_size=31).map(
    lambda d: uuid.UUID(hex=(d[:12] + "4" + d[13:16] + "8" + d[16:31]), version=4).hex
)


@given(st.one_of(generated_ids, digit_heavy_ids))
def test_a_generated_request_id_is_never_rewritten(request_id: str) -> None:
    assert is_generated_request_id(request_id)
    assert redact_request_id(request_id) == request_id
    assert redact_text(f"request {request_id} failed") == f"request {request_id} failed"
    logger, stream = capture()
    marker = set_request_id(request_id)
    try:
        logger.info("failed on %s", request_id, extra={"quoted": f"id={request_id}"})
    finally:
        reset_request_id(marker)
    record = json.loads(stream.getvalue())
    assert record["request_id"] == request_id
    assert record["message"] == f"failed on {request_id}"
    assert record["quoted"] == f"id={request_id}"


def test_digit_runs_that_used_to_be_rewritten_survive() -> None:
    # A 15-digit run (the card pattern) and a mobile number (the phone pattern) inside ids.
    for request_id in ("abc123456789456789abcdefabcdefab", "ab13812345674cde8abcdefabcdefabc"):
        assert is_generated_request_id(request_id)
        assert redact_text(request_id) == request_id
        assert redact_text(f"({request_id})") == f"({request_id})"


def test_the_middleware_makes_ids_of_the_recognisable_shape() -> None:
    assert all(is_generated_request_id(new_request_id()) for _ in range(1000))


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.text("abcdefghijklmnopqrstuvwxyz", max_size=8))
def test_personal_data_in_a_client_chosen_request_id_is_still_redacted(phone: str, suffix: str) -> None:
    chosen = f"{suffix}-{phone}"
    assert not is_generated_request_id(chosen)
    redacted = redact_request_id(chosen)
    assert redacted is not None
    assert phone not in redacted


def test_personal_data_next_to_a_generated_id_in_a_message_is_still_redacted() -> None:
    request_id = new_request_id()
    text = redact_text(f"{request_id} phone 13812345678 mail li.lei@example.cn {request_id}")
    assert text == f"{request_id} phone {REDACTED} mail {REDACTED} {request_id}"
