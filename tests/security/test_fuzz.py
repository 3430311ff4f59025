"""Fuzzing every service's OpenAPI with schemathesis, inside `make test` (issue 13, "proof the suite keeps holding").

Each operation of each service gets a bounded number of generated requests
(``SECURITY_FUZZ_EXAMPLES``, default 3; NUL bytes and any Unicode included),
sent over real HTTP to the running service with the token its path's first
segment calls for: none on ``public/``, a customer's on ``customer/`` and
``me/``, a staff member holding every permission on ``staff/``, a service
client listed everywhere and holding every scope on ``internal/``. A 5xx, a
response whose body does not match the schema documented for its status, or
an undocumented content type fails the run, naming the operation and the
request that did it (as a curl command).

A longer campaign (docs/security.md)::

    SECURITY_FUZZ_EXAMPLES=200 SECURITY_FUZZ_SEED=$RANDOM \\
        uv run pytest tests/security/test_fuzz.py -p no:randomly -q
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as hyp_settings
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance

from tests.security.support import Callers, RunningService

pytestmark = pytest.mark.flow

EXAMPLES = int(os.environ.get("SECURITY_FUZZ_EXAMPLES", "3"))
SEED = int(os.environ.get("SECURITY_FUZZ_SEED", "1313"))
#: Every scope of docs/contracts.md: the fuzzing service client may call every internal route.
ALL_SCOPES = " ".join(
    [
        "identity:revocations",
        "identity:accounts",
        "identity:notify",
        "identity:risk_level",
        "identity:step_up",
        "identity:maintenance",
        "risk:score",
        "risk:labels",
        "risk:lists",
        "risk:read",
        "risk:signals",
        "incidents:report",
        "audit:verify",
    ]
)
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


def headers_for(service: str, path: str, callers: Callers) -> dict[str, str]:
    segment = path.strip("/").split("/", 1)[0]
    if segment in ("customer", "me"):
        return callers.headers("customer")
    if segment == "staff":
        return callers.headers("staff_with")
    if segment == "internal":
        # A client the service lists (vault and permissions allow identity; identity allows risk).
        client = "risk" if service == "identity" else "identity"
        return callers.issuer.headers(subject=client, kind="service", session_id=None, scope=ALL_SCOPES)
    return {}


def fuzz_operation(operation: Any, base_url: str, headers: dict[str, str], statuses: Counter[int]) -> list[str]:
    """Run the generated requests of one operation; the failures found (deduplicated by message)."""
    failures: dict[str, str] = {}
    session = requests.Session()  # closed at the end: no idle keep-alive connection outlives the run

    @seed(SEED)
    @hyp_settings(
        max_examples=EXAMPLES,
        phases=[Phase.explicit, Phase.generate],
        database=None,
        deadline=None,
        derandomize=False,
        suppress_health_check=list(HealthCheck),
    )
    @given(operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, session=session, timeout=30)
        statuses[response.status_code] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis' Failure and FailureGroup
            text = str(exc).strip()
            message = f"{response.status_code} " + (text.splitlines()[0] if text else type(exc).__name__)
            failures.setdefault(message, f"{message}\n    {case.as_curl_command(headers=headers)}")

    try:
        run()
    finally:
        session.close()
    return list(failures.values())


async def test_no_operation_answers_a_5xx_or_off_its_schema(
    suite: tuple[dict[str, RunningService], Callers],
) -> None:
    running, callers = suite
    found: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for name, service in running.items():
        schema = schemathesis.openapi.from_dict(service.app.openapi())
        for result in schema.get_all_operations():
            operation = result.ok()  # type: ignore[union-attr]
            operations += 1
            headers = headers_for(name, operation.path, callers)
            failures = await asyncio.to_thread(fuzz_operation, operation, service.url, headers, statuses)
            found += [f"{name} {operation.method.upper()} {operation.path}: {f}" for f in failures]
    assert operations > 100
    # Every operation was called, and the generated junk was refused as bad input, not served.
    assert sum(statuses.values()) >= operations
    assert sum(n for status, n in statuses.items() if status in (400, 422)) > operations / 2, statuses
    assert found == [], "\n".join(found)
