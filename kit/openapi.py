"""Every error answer documented as what it is: ``application/problem+json`` with the kit's problem schema.

FastAPI documents 422 (and any error a route declares) as ``application/json``
with its own validation schema, while every error the suite answers is an RFC
9457 problem (kit/errors.py). :func:`document_problems` rewrites a service's
OpenAPI so each operation's error responses (4xx, 5xx and ``default``) use
``application/problem+json`` and the ``Problem`` schema, names the stable
``code`` values each status can carry, and adds the errors every operation can
answer (400 malformed body, 422 validation, 500, 503, and 401/403 on routes
that need a caller), so a client generated from the OpenAPI parses them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from kit.errors import PROBLEM_CONTENT_TYPE, SuiteError

PROBLEM_REF = "#/components/schemas/Problem"

#: Codes the kit's handlers answer besides the SuiteError classes (kit/errors.py, kit/health.py).
KIT_CODES: dict[int, tuple[str, ...]] = {
    400: ("bad_request", "malformed_body"),
    401: ("not_authenticated",),
    403: ("forbidden",),
    404: ("not_found",),
    405: ("method_not_allowed",),
    406: ("not_acceptable",),
    409: ("conflict",),
    413: ("payload_too_large",),
    415: ("unsupported_media_type",),
    422: ("validation_failed", "invalid_value"),
    429: ("rate_limited",),
    500: ("internal_error",),
    503: ("unavailable", "database_unavailable", "not_ready"),
}

#: What every operation can answer, and what an authenticated one adds.
COMMON_ERRORS: dict[int, str] = {
    400: "Malformed request (e.g. a body that is not JSON).",
    422: "The request did not pass validation (`errors` names each field), or a value cannot be stored.",
    500: "Internal error (quote the request id).",
    503: "A dependency (database, another service) is unavailable; retry later.",
}
AUTH_ERRORS: dict[int, str] = {
    401: "No valid access token (missing, expired, revoked or forged).",
    403: "The caller is not allowed (wrong kind of caller, permission, scope or assurance level).",
}

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; `code` is stable and machine-readable, `detail` is for people.",
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {
        "type": {"type": "string", "description": "`urn:bank-suite:problem:<code>`."},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "code": {"type": "string", "description": "Stable error code (listed per response)."},
        "detail": {"type": "string"},
        "instance": {"type": "string", "description": "The request path."},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "With `validation_failed`: each refused field (the value is never echoed).",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}


def _subclasses(cls: type[SuiteError]) -> Iterator[type[SuiteError]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def problem_codes() -> dict[int, list[str]]:
    """Every known problem code by HTTP status (the kit's and every SuiteError subclass imported)."""
    codes: dict[int, set[str]] = defaultdict(set)
    for status, names in KIT_CODES.items():
        codes[status].update(names)
    classes: list[type[SuiteError]] = [SuiteError, *_subclasses(SuiteError)]
    for cls in classes:
        codes[cls.status].add(cls.code)
    return {status: sorted(names) for status, names in sorted(codes.items())}


def _problem_response(description: str, codes: list[str]) -> dict[str, Any]:
    listed = f" Codes: {', '.join(f'`{c}`' for c in codes)}." if codes else ""
    return {
        "description": description.rstrip(".") + "." + listed,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": PROBLEM_REF}}},
    }


def _is_error(status: str) -> bool:
    return status == "default" or (status.isdigit() and int(status) >= 400)


def document_problems(schema: dict[str, Any], authenticated: set[tuple[str, str]]) -> dict[str, Any]:
    """Rewrite ``schema`` in place (see the module docstring); ``authenticated`` holds (METHOD, path)."""
    codes = problem_codes()
    every_code = sorted({c for names in codes.values() for c in names})
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            wanted = dict(COMMON_ERRORS)
            if (method.upper(), path) in authenticated:
                wanted.update(AUTH_ERRORS)
            for code, text in wanted.items():
                responses.setdefault(str(code), {"description": text})
            for status, response in list(responses.items()):
                if _is_error(status):
                    description = str(response.get("description") or "Error")
                    if description == "Validation Error":
                        description = COMMON_ERRORS[422]
                    status_codes = every_code if status == "default" else codes.get(int(status), [])
                    responses[status] = _problem_response(description, status_codes)
            responses.setdefault("default", _problem_response("Any other error", every_code))
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    text = repr(schema.get("paths", {}))
    for unused in ("HTTPValidationError", "ValidationError"):
        if unused in components and f"#/components/schemas/{unused}" not in text:
            del components[unused]
    return schema
