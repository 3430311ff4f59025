"""JSON logs with trace ids, and a filter that keeps secrets and PII out of them."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from kit.context import GENERATED_REQUEST_ID, current_request_id, is_generated_request_id

REDACTED = "[redacted]"

#: Keys whose values never reach a log, whatever their content.
SENSITIVE_KEYS = frozenset(
    {
        "password",
        "new_password",
        "current_password",
        "secret",
        "token",
        "access_token",
        "refresh_token",
        "id_token",
        "authorization",
        "cookie",
        "set-cookie",
        "otp",
        "code",
        "totp",
        "recovery_code",
        "private_key",
        "client_secret",
        "api_key",
        "national_id",
        "id_number",
        "phone",
        "email",
        "name",
        "full_name",
        "card_number",
        "pan",
        "address",
        "birth_date",
    }
)

#: Patterns of values that are sensitive wherever they appear in a message.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Bearer tokens and JWTs (three base64url segments).
    (re.compile(r"(?i)bearer\s+[A-Za-z0-9._~+/=-]+"), "Bearer " + REDACTED),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    # Mainland resident ID numbers (17 digits + digit or X).
    (re.compile(r"(?<!\d)\d{17}[\dXx](?!\d)"), REDACTED),
    # Bank card numbers (13-19 digits, optionally grouped).
    (re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)"), REDACTED),
    # Mainland mobile numbers.
    (re.compile(r"(?<!\d)(?:\+?86)?1[3-9]\d{9}(?!\d)"), REDACTED),
    # E-mail addresses.
    (re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), REDACTED),
    # key=value / "key": "value" pairs naming a secret.
    (
        re.compile(r"(?i)\b(password|passwd|secret|token|api[_-]?key|client_secret)\b(\"?\s*[:=]\s*\"?)[^\s\",&]+"),
        r"\1\2" + REDACTED,
    ),
)


#: A request id the suite generated, standing alone in a text (not part of a longer token).
_REQUEST_ID_IN_TEXT = re.compile(rf"(?<![0-9A-Za-z]){GENERATED_REQUEST_ID.pattern}(?![0-9A-Za-z])")


def _redact_patterns(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_text(text: str) -> str:
    """``text`` with secrets and personal data replaced; request ids the suite generated stay whole."""
    if _REQUEST_ID_IN_TEXT.search(text) is None:
        return _redact_patterns(text)
    parts: list[str] = []
    last = 0
    for found in _REQUEST_ID_IN_TEXT.finditer(text):
        parts.append(_redact_patterns(text[last : found.start()]))
        parts.append(found.group())
        last = found.end()
    parts.append(_redact_patterns(text[last:]))
    return "".join(parts)


def redact_request_id(value: str | None) -> str | None:
    """A request id for a log: as is when the suite generated it, redacted like any text when a client chose it."""
    if value is None or is_generated_request_id(value):
        return value
    return redact_text(value)


def redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS:
        return REDACTED
    if key == "request_id" and isinstance(value, str):
        return redact_request_id(value)
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {str(k): redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value("", v) for v in value]
    return value


_STANDARD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"})

#: Ids this module formats itself as hex. A random trace id can hold a run of 13+ decimal
#: digits that the card pattern would blank, and a log line that cannot be joined to its
#: trace is worth less than nothing. (A request id can come from a client: only the ones the
#: suite generated are left whole, see :func:`redact_request_id`.)
_OWN_HEX_IDS = frozenset({"trace_id", "span_id"})


class RedactionFilter(logging.Filter):
    """Rewrites the message and every extra field of a record before it is emitted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            try:
                record.msg = record.getMessage()
            except (TypeError, ValueError):
                record.msg = str(record.msg)
            record.args = None
        record.msg = redact_text(str(record.msg))
        for key in list(record.__dict__):
            if key not in _STANDARD_ATTRS and key not in _OWN_HEX_IDS:
                record.__dict__[key] = redact_value(key, record.__dict__[key])
        if record.exc_info and record.exc_info[1] is not None:
            # Exception messages (e.g. a database error) can quote values.
            record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class TraceContextFilter(logging.Filter):
    """Adds the current trace id, span id and request id to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        request_id = current_request_id()
        if request_id:
            record.request_id = request_id
        return True


def configure_logging(service: str, *, level: str = "INFO", json: bool = True) -> None:
    """Route the root logger to stdout through the trace and redaction filters."""
    handler = logging.StreamHandler(sys.stdout)
    handler.addFilter(TraceContextFilter())
    handler.addFilter(RedactionFilter())
    if json:
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"levelname": "level", "asctime": "time", "name": "logger"},
                static_fields={"service": service},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # uvicorn's access log would print raw paths and query strings; the
    # gateway writes its own access log without tokens or personal data.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every URL at INFO; query strings can carry codes or tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
