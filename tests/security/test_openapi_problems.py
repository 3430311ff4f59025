"""Every error response of every operation of every service is documented as problem+json (issue 13, item 18)."""

from __future__ import annotations

from typing import Any

import pytest

from kit.errors import PROBLEM_CONTENT_TYPE
from tests.support.suite import SERVICE_BUILDERS, build_service

SERVICES = sorted(SERVICE_BUILDERS)


def openapi_of(name: str) -> dict[str, Any]:
    app = build_service(name, "postgresql://nobody@127.0.0.1:9/none")
    schema: dict[str, Any] = app.openapi()
    return schema


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "put", "post", "delete", "patch")
    ]


@pytest.mark.parametrize("name", SERVICES)
def test_every_error_response_is_problem_json(name: str) -> None:
    schema = openapi_of(name)
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    wrong: list[str] = []
    for method, path, operation in operations(schema):
        responses = operation["responses"]
        for status in ("422", "500", "default"):
            if status not in responses:
                wrong.append(f"{method} {path}: {status} undocumented")
        for status, response in responses.items():
            if status != "default" and int(status) < 400:
                continue
            content = response.get("content", {})
            if list(content) != [PROBLEM_CONTENT_TYPE]:
                wrong.append(f"{method} {path} {status}: {sorted(content)}")
            elif content[PROBLEM_CONTENT_TYPE]["schema"] != {"$ref": "#/components/schemas/Problem"}:
                wrong.append(f"{method} {path} {status}: not the Problem schema")
    assert wrong == []


def test_codes_are_listed_and_authenticated_routes_document_401() -> None:
    schema = openapi_of("vault")
    read = schema["paths"]["/staff/records/{record_id}/reads"]["post"]["responses"]
    assert "`approval_required`" in read["403"]["description"]
    assert "`validation_failed`" in read["422"]["description"]
    assert "401" in read
    public = schema["paths"]["/healthz"]["get"]["responses"] if "/healthz" in schema["paths"] else {}
    assert "401" not in public
