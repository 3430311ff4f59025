"""Typed errors and the one handler that renders them as RFC 9457 problems.

Domain errors subclass :class:`SuiteError` next to the service that raises
them and set ``status`` and a stable ``code``. Clients get
``application/problem+json`` and never a stack trace, SQL or a secret.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from asyncpg import PostgresError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from kit.context import current_request_id

logger = logging.getLogger("kit.errors")

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:bank-suite:problem:"


class SuiteError(Exception):
    """Base of every expected error; carries its HTTP status and a stable code."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "bad_request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extensions = extensions


class BadRequest(SuiteError):
    pass


class NotAuthenticated(SuiteError):
    status = 401
    code = "not_authenticated"
    title = "Authentication required"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extensions)


class Forbidden(SuiteError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(SuiteError):
    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(SuiteError):
    status = 409
    code = "conflict"
    title = "Conflict"


class TooManyRequests(SuiteError):
    status = 429
    code = "rate_limited"
    title = "Too many requests"


class ServiceUnavailable(SuiteError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extensions: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + code,
        "title": title,
        "status": status,
        "code": code,
    }
    if detail:
        body["detail"] = detail
    if request is not None:
        body["instance"] = request.url.path
    request_id = current_request_id()
    if request_id:
        body["request_id"] = request_id
    body.update(extensions)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_CONTENT_TYPE)


_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("not_authenticated", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


async def _suite_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SuiteError)
    if exc.status >= 500:
        logger.warning("request failed: %s", exc.code)
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        **exc.extensions,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=dict(exc.headers) if exc.headers else None,
    )


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(err.get("type") == "json_invalid" for err in errors):
        return problem_response(
            request,
            status=400,
            code="malformed_body",
            title="Malformed request body",
            detail="The request body is not valid JSON.",
        )
    # Only location, message and type: the rejected input itself may be a
    # password or personal data and is never echoed back.
    fields = [
        {
            "loc": [str(part) for part in err.get("loc", ())],
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in errors
    ]
    return problem_response(
        request,
        status=422,
        code="validation_failed",
        title="Validation failed",
        detail="The request did not pass validation.",
        errors=fields,
    )


async def _validation_error_async(request: Request, exc: Exception) -> JSONResponse:
    return _validation_error(request, exc)


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # Usually two requests racing for the same unique value; the constraint
    # name and the values stay in the log (redacted), not in the response.
    logger.warning("integrity error on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    return problem_response(
        request,
        status=409,
        code="conflict",
        title="Conflict",
        detail="The change conflicts with data that already exists.",
    )


def is_data_error(exc: BaseException) -> bool:
    """Whether the database (or the driver encoding a parameter) refused a value as such.

    SQLSTATE class 22 (invalid byte sequence, numeric out of range, invalid text
    representation...) and asyncpg's client-side ``DataError`` (a parameter it
    cannot encode: an integer past int64, a lone surrogate) are bad input, not
    a failure of the service.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (DataError, UnicodeEncodeError)) or type(current).__name__ == "DataError":
            return True
        sqlstate = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(sqlstate, str) and sqlstate.startswith("22"):
            return True
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) and id(orig) not in seen else current.__cause__
    return False


async def _data_error(request: Request, exc: Exception) -> JSONResponse:
    # The driver's message may quote the value (personal data): log the class only.
    logger.warning("database refused a value on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return problem_response(
        request,
        status=422,
        code="invalid_value",
        title="Invalid value",
        detail="A value in the request cannot be stored or compared (out of range or not valid text).",
    )


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if is_data_error(exc):
        return await _data_error(request, exc)
    logger.error("database unavailable on %s %s: %s", request.method, request.url.path, exc.__class__.__name__)
    return problem_response(
        request,
        status=503,
        code="database_unavailable",
        title="Service unavailable",
        detail="The service's database did not answer; retry later.",
        headers={"Retry-After": "2"},
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # A statement whose connection broke under it (SQLAlchemy invalidated the connection) is the
    # database being unavailable, whatever class the driver gave the error; a value the database
    # refuses (a NUL, a number past a column's range) is the client's; anything else is a bug.
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return await _database_unavailable(request, exc)
    if is_data_error(exc):
        return await _data_error(request, exc)
    return await _unexpected_error(request, exc)


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    if is_data_error(exc):
        return await _data_error(request, exc)
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        request,
        status=500,
        code="internal_error",
        title="Internal error",
        detail="The request could not be completed. Quote the request id when reporting it.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SuiteError, _suite_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error_async)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _data_error)
    # asyncpg raises plain OSErrors (refused, reset) when the server is gone;
    # SQLAlchemy wraps lost connections, pool exhaustion and cancelled statements.
    for unavailable in (InterfaceError, OperationalError, PoolTimeout, ConnectionError):
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PostgresError, _database_error)  # kit.statements runs asyncpg directly
    app.add_exception_handler(Exception, _unexpected_error)
