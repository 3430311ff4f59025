"""The authorisation matrix: every route of every service, from its OpenAPI, against six kinds of caller.

A route's expected answers derive from the first segment of its path (the
suite's convention: ``public/`` anyone, ``customer/`` customers, ``staff/``
staff holding the route's permission, ``internal/`` service clients holding
the route's scope or listed by client id, ``me/`` any signed-in caller),
plus the explicit per-route overrides below. A route whose expectation
cannot be derived (a new first segment, a route outside the convention with
no override) fails the test: nothing new ships without being placed in the
matrix.

``allowed`` means the caller got past authorisation: any answer but 401 and
403 (a 404 for the made-up ids, a 422 for the empty body, a 200...).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hyp_settings
from hypothesis.strategies import SearchStrategy

from kit.inputs import CONTROL_CHARACTERS
from tests.security.support import Callers, RunningService

pytestmark = pytest.mark.flow

CALLERS = ("anonymous", "customer", "second_customer", "staff_without", "staff_with", "service_without_scope")
ALLOWED = "allowed"
DENIED = "denied"  # 401 or 403
#: A public route: any answer but a refusal of the caller's token (its own 401s, e.g. wrong credentials, are fine).
PUBLIC = "public"
TOKEN_REFUSALS = ("not_authenticated", "invalid_token", "session_revoked")
ANON = 401

#: Expected answer per caller, by the path's first segment.
CONVENTION: dict[str, dict[str, int | str]] = {
    "public": dict.fromkeys(CALLERS, PUBLIC),
    "customer": {
        "anonymous": ANON,
        "customer": ALLOWED,
        "second_customer": ALLOWED,  # their own data: the resource ids below are nobody's
        "staff_without": 403,
        "staff_with": 403,
        "service_without_scope": 403,
    },
    "staff": {
        "anonymous": ANON,
        "customer": 403,
        "second_customer": 403,
        "staff_without": 403,
        "staff_with": ALLOWED,
        "service_without_scope": 403,
    },
    "internal": {
        "anonymous": ANON,
        "customer": 403,
        "second_customer": 403,
        "staff_without": 403,
        "staff_with": 403,
        "service_without_scope": 403,
    },
    "me": {
        "anonymous": ANON,
        "customer": ALLOWED,
        "second_customer": ALLOWED,
        "staff_without": ALLOWED,
        "staff_with": ALLOWED,
        "service_without_scope": DENIED,
    },
}

#: Routes outside the convention, or whose answer differs from it for a stated reason:
#: "<service> <METHOD> <path>" -> {caller: expected} (callers not named follow the convention).
OVERRIDES: dict[str, dict[str, int | str]] = {
    # The catalogue of permissions, roles and separation-of-duty rules is readable by every staff member
    # (they choose what to request from it); changing it needs its permission.
    "permissions GET /staff/permissions": {"staff_without": ALLOWED},
    "permissions GET /staff/roles": {"staff_without": ALLOWED},
    "permissions GET /staff/sod-rules": {"staff_without": ALLOWED},
    # Grants belong to staff: a customer has none to list.
    "permissions GET /me/grants": {"customer": 403, "second_customer": 403},
    # An approval is readable by its requester or with approval:read; a made-up id is nobody's, so the
    # lookup answers first. Deciding and commenting need approval:approve / approval:read on an existing one.
    "permissions GET /staff/approvals/{approval_id}": {"staff_without": "404:approval_not_found"},
    "permissions POST /staff/approvals/{approval_id}/approve": {"staff_without": "404:approval_not_found"},
    "permissions POST /staff/approvals/{approval_id}/reject": {"staff_without": "404:approval_not_found"},
    "permissions POST /staff/approvals/{approval_id}/comments": {"staff_without": "404:approval_not_found"},
    "permissions GET /internal/approvals/{approval_id}": {"service_without_scope": "404:approval_not_found"},
    # The data-class catalogue is reference data for any signed-in caller, services included.
    "vault GET /me/catalogue": {"service_without_scope": ALLOWED},
    # Transit keys belong to the calling service (created on its first use): any service client may
    # encrypt under its own keys; another service's key answers 403 / 404.
    "vault POST /internal/transit/keys/{name}/datakey": {"service_without_scope": ALLOWED},
    "vault POST /internal/transit/keys/{name}/encrypt": {"service_without_scope": ALLOWED},
    "vault POST /internal/transit/keys/{name}/encrypt/batch": {"service_without_scope": ALLOWED},
    "vault POST /internal/transit/keys/{name}/decrypt": {"service_without_scope": ALLOWED},
    "vault POST /internal/transit/keys/{name}/decrypt/batch": {"service_without_scope": ALLOWED},
    "vault POST /internal/transit/keys/{name}/rewrap": {"service_without_scope": ALLOWED},
    "vault POST /internal/transit/keys/{name}/rewrap/batch": {"service_without_scope": ALLOWED},
    # Any service client may ask for a permission decision or an approval requirement (every service's
    # RequirePermission does); executing an approval is checked against the policy's executors once found.
    "permissions POST /internal/checks": {"service_without_scope": ALLOWED},
    "permissions POST /internal/checks/batch": {"service_without_scope": ALLOWED},
    "permissions POST /internal/approval-requirements": {"service_without_scope": ALLOWED},
    "permissions POST /internal/approvals/{approval_id}/execute": {"service_without_scope": "404:approval_not_found"},
    # The development notification sink answers only in development and test (404 elsewhere); every
    # suite client reads it there, so tests and `make codes` can fetch one-time codes.
    "identity GET /internal/dev/notifications": {"service_without_scope": ALLOWED},
    # Crypto-shredding is maker-checker (issue 13, item 7): even the permission holder needs an approval.
    "vault DELETE /staff/subjects/{subject_id}": {"staff_with": "403:approval_required"},
}

#: Open findings a change in flight fixes: each entry is skipped until it holds the convention, and
#: then fails the test until it is removed here (identity's internal-route scopes, issue 13 item 9,
#: emptied it).
PENDING: dict[str, dict[str, str]] = {}
#: Routes that are deliberately outside every caller segment (probes), by path.
PROBES: dict[str, dict[str, int | str]] = {
    path: dict.fromkeys(CALLERS, PUBLIC)
    for path in ("/healthz", "/readyz", "/livez", "/metrics", "/.well-known/jwks.json")
}


class Unplaced(Exception):
    """A route the convention and the overrides do not place."""


def expectation(service: str, method: str, path: str) -> dict[str, int | str]:
    key = f"{service} {method} {path}"
    if path in PROBES:
        return PROBES[path]
    segment = path.strip("/").split("/", 1)[0]
    base = CONVENTION.get(segment)
    if base is None and key not in OVERRIDES:
        raise Unplaced(f"{key}: no expectation (first segment {segment!r} is outside the convention, no override)")
    expected = dict(base or {})
    expected.update(OVERRIDES.get(key, {}))
    missing = [c for c in CALLERS if c not in expected]
    if missing:
        raise Unplaced(f"{key}: no expectation for {missing}")
    return expected


def first_example(strategy: SearchStrategy[Any]) -> Any:
    """The first value hypothesis draws (``strategy.example()`` draws a hundred to pick one)."""
    found: list[Any] = []

    @hyp_settings(
        max_examples=1, phases=[Phase.generate], database=None, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(strategy)
    def pick(value: Any) -> None:
        found.append(value)

    pick()
    return found[0]


def _printable(value: Any) -> Any:
    """The generated value with control characters replaced (the matrix tests authorisation, not input
    hygiene: kit/inputs.py refuses those with a 422 before a route's permission check)."""
    if isinstance(value, str):
        return CONTROL_CHARACTERS.sub("x", value)
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def example_request(schema: schemathesis.BaseSchema, method: str, path: str) -> dict[str, Any]:
    """One schema-valid request for the operation (its documented example where it has one), so the
    authorisation decision is reached even where it is taken after the body is validated."""
    case = first_example(schema[path][method].as_strategy())
    url = path
    for name, value in (case.path_parameters or {}).items():
        url = url.replace("{" + name + "}", quote(str(_printable(value)), safe="") or "x")
    request: dict[str, Any] = {"url": url, "params": _printable(dict(case.query or {}))}
    body = _printable(case.body)
    if isinstance(body, (dict, list)):
        if case.media_type and "json" not in case.media_type:
            request["data"] = body
        else:
            request["json"] = body
    return request


def routes(app_schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in sorted(app_schema["paths"].items())
        for method, operation in sorted(item.items())
        if method in ("get", "put", "post", "delete", "patch")
    ]


def _code(response: httpx.Response) -> str | None:
    if not response.headers.get("content-type", "").startswith("application/problem+json"):
        return None
    code = response.json().get("code")
    return str(code) if code is not None else None


def verdict(service: str, expected: int | str, status: int, code: str | None) -> bool:
    if expected == ALLOWED:
        if service == "identity" and code == "session_revoked":
            # Identity binds every user token to a session row: the matrix's made-up sessions get this far
            # (signature, kind, expiry and claims accepted) and are then refused as unknown sessions.
            return True
        return status not in (401, 403) and status < 500
    if expected == PUBLIC:
        return status < 500 and not (status == 401 and code in TOKEN_REFUSALS)
    if expected == DENIED:
        return status in (401, 403)
    if isinstance(expected, str):  # "403:approval_required": that status with that problem code
        want_status, want_code = expected.split(":", 1)
        return status == int(want_status) and code == want_code
    return status == expected


async def test_every_route_answers_every_caller_as_expected(
    suite: tuple[dict[str, RunningService], Callers],
) -> None:
    running, callers = suite
    wrong: list[str] = []
    unplaced: list[str] = []
    walked = 0
    for name, service in running.items():
        schema = service.app.openapi()
        fuzzable = schemathesis.openapi.from_dict(schema)
        fuzzable.config.generation.update(allow_x00=False)
        async with httpx.AsyncClient(base_url=service.url, timeout=20) as client:
            for method, path, _ in routes(schema):
                try:
                    expected = expectation(name, method, path)
                except Unplaced as exc:
                    unplaced.append(str(exc))
                    continue
                request = example_request(fuzzable, method, path)
                walked += 1
                for caller in CALLERS:
                    response = await client.request(method, **request, headers=callers.headers(caller))
                    code = _code(response)
                    pending = PENDING.get(f"{name} {method} {path}", {}).get(caller)
                    if pending is not None:
                        if verdict(name, expected[caller], response.status_code, code):
                            wrong.append(f"{name} {method} {path} as {caller}: fixed, remove it from PENDING")
                        continue
                    if not verdict(name, expected[caller], response.status_code, code):
                        wrong.append(
                            f"{name} {method} {path} as {caller}: {response.status_code} {code}, "
                            f"expected {expected[caller]}"
                        )
    assert unplaced == [], "\n".join(unplaced)
    assert walked > 100
    assert wrong == [], "\n".join(wrong)
