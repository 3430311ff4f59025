"""One gate for every string the API accepts: no NUL, no other control character, no lone surrogate.

PostgreSQL refuses a NUL in text and JSONB (``invalid byte sequence``) and
asyncpg cannot encode a lone surrogate, so such a value would otherwise reach
the database and come back as a 500; control characters in identifiers and
labels are also how log lines and terminal output get forged. The app
factory applies :func:`refuse_control_characters` to every route: it walks
the decoded JSON body (keys and values), the query string and the path
parameters, and answers a 422 ``validation_failed`` problem naming each
offending field (never echoing the value). Tab, line feed and carriage return
stay allowed (free-text comments use them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError

#: C0 controls but tab, LF and CR; DEL and the C1 controls; lone UTF-16 surrogates.
CONTROL_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
MESSAGE = "must not contain NUL or other control characters"
KEY_MESSAGE = "object keys must not contain NUL or other control characters"


def has_control_characters(value: str) -> bool:
    return CONTROL_CHARACTERS.search(value) is not None


def offending(value: Any, loc: tuple[str | int, ...]) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Locations of the strings (and object keys) in ``value`` that carry a control character."""
    if isinstance(value, str):
        if has_control_characters(value):
            yield loc, MESSAGE
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and has_control_characters(key):
                # The key itself is the attacker's text: name the object that holds it.
                yield loc, KEY_MESSAGE
                continue
            yield from offending(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from offending(item, (*loc, index))


def _errors(found: Iterator[tuple[tuple[str | int, ...], str]]) -> list[dict[str, Any]]:
    return [{"loc": loc, "msg": msg, "type": "control_character", "input": None} for loc, msg in found]


async def refuse_control_characters(request: Request) -> None:
    """Route dependency (installed by the app factory on every route): see the module docstring."""
    errors: list[dict[str, Any]] = []
    for name, value in request.path_params.items():
        if isinstance(value, str):
            errors += _errors(offending(value, ("path", name)))
    for name, value in request.query_params.multi_items():
        if has_control_characters(name):
            errors += _errors(iter([(("query",), "parameter names " + MESSAGE)]))
        else:
            errors += _errors(offending(value, ("query", name)))
    content_type = request.headers.get("content-type", "")
    if request.method not in ("GET", "HEAD", "OPTIONS") and "json" in content_type:
        raw = await request.body()  # FastAPI has read and cached it already for a route with a body
        if raw:
            try:
                decoded = json.loads(raw)
            except ValueError:
                decoded = None  # not JSON: FastAPI answers its own 400 when the route reads a body
            errors += _errors(offending(decoded, ("body",)))
    if errors:
        raise RequestValidationError(errors)
