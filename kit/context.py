"""Per-request context shared by logging, errors and the service client."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"

#: The shape of the request ids the suite makes: a random UUID (version 4) as 32 lowercase hex
#: digits. Recognisable (the version digit 4 and the variant digit 8-b sit at fixed places), so
#: the log redaction leaves them whole: a random id often holds a digit run that looks like a
#: phone or card number, and an id a customer quotes must be found in the logs.
GENERATED_REQUEST_ID = re.compile(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def is_generated_request_id(value: str) -> bool:
    return GENERATED_REQUEST_ID.fullmatch(value) is not None


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> object:
    return _request_id.set(value)


def reset_request_id(token: object) -> None:
    _request_id.reset(token)  # type: ignore[arg-type]
