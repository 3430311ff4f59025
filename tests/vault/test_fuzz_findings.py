"""From the attacker's side: the inputs a fuzzing run turned into 500s are refused with a 4xx problem."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.vault.conftest import VaultClient


async def test_a_cursor_past_the_integer_range_is_a_4xx(vault: VaultClient) -> None:
    auditor = vault.staff("audit:read")
    huge = "68308377733517904686612480"
    response = await vault.http.get("/staff/access-log", params={"after": huge}, headers=auditor)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("token", ["tok_\x00abc", "not-a-token", "tok_" + "a" * 300, "\ud800"])
async def test_a_malformed_value_token_is_a_4xx(vault: VaultClient, token: str) -> None:
    reader = vault.staff("vault:read")
    response = await vault.http.post(
        "/staff/tokens/reads",
        content=json.dumps({"tokens": [token], "purpose": "customer_service"}).encode(),
        headers={**reader, "content-type": "application/json"},
    )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_control_characters_are_refused_naming_the_field(vault: VaultClient) -> None:
    writer = vault.staff("account:modify")
    body = {"subject_id": str(uuid.uuid4()), "label": "home\u0000", "fields": {"phone": "13812345678"}}
    response = await vault.http.post("/staff/records", json=body, headers=writer)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert ["body", "label"] in [e["loc"] for e in problem["errors"]]
    assert "\u0000" not in response.text
    key = await vault.http.post(
        "/staff/lookups",
        json={"field": "pho\u0007ne", "value": "13812345678", "purpose": "customer_service"},
        headers=vault.staff("vault:read"),
    )
    assert key.status_code == 422
    assert ["body", "field"] in [e["loc"] for e in key.json()["errors"]]
    query = await vault.http.get("/staff/access-log", params={"actor": "a\u0000b"}, headers=vault.staff("audit:read"))
    assert query.status_code == 422
    assert ["query", "actor"] in [e["loc"] for e in query.json()["errors"]]
