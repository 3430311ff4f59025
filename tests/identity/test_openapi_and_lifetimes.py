"""Every endpoint is documented with examples; password expiry and the absolute session lifetime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import update

from services.identity.models import Account, Session
from services.identity.runtime import Runtime
from tests.identity.support import PASSWORD, login, signed_in


def _has_example(schema: dict[str, Any], components: dict[str, Any]) -> bool:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    if "items" in schema:
        return _has_example(schema["items"], components)
    return bool(schema.get("examples") or schema.get("example"))


async def test_every_endpoint_is_documented_with_examples(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    components = spec["components"]["schemas"]
    undocumented, no_example = [], []
    for path, operations in spec["paths"].items():
        if path in ("/healthz", "/readyz"):
            continue
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            if not operation.get("description"):
                undocumented.append(name)
            body = operation.get("requestBody", {}).get("content", {})
            for media in body.values():
                if not (media.get("example") or _has_example(media.get("schema", {}), components)):
                    no_example.append(f"{name} (request)")
            ok = operation.get("responses", {}).get("200") or operation.get("responses", {}).get("201") or {}
            for media in ok.get("content", {}).values():
                if not (media.get("example") or _has_example(media.get("schema", {}), components)):
                    no_example.append(f"{name} (response)")
    assert undocumented == []
    assert no_example == []


async def test_expired_password_must_be_changed(client: httpx.AsyncClient, identity_app: FastAPI) -> None:
    account_id, data, _ = await signed_in(client)
    runtime: Runtime = identity_app.state.identity
    original = runtime.settings
    runtime.settings = original.model_copy(update={"password_max_age_days": 90})
    try:
        async with identity_app.state.database.sessionmaker() as session:
            await session.execute(
                update(Account)
                .where(Account.id == uuid.UUID(account_id))
                .values(password_changed_at=datetime.now(UTC) - timedelta(days=91))
            )
            await session.commit()
        response = (await login(client, data["phone"], PASSWORD)).json()
        assert response["status"] == "password_change_required"
        same = await client.post(
            "/public/login/password", json={"challenge": response["challenge"], "new_password": PASSWORD}
        )
        assert (same.status_code, same.json()["code"]) == (400, "password_reused")
        renewed = await client.post(
            "/public/login/password",
            json={"challenge": response["challenge"], "new_password": "Spring-Orchard-61-Bell!"},
        )
    finally:
        runtime.settings = original
    assert renewed.json()["status"] == "authenticated", renewed.text


async def test_no_refresh_beyond_the_absolute_session_lifetime(
    client: httpx.AsyncClient, identity_app: FastAPI
) -> None:
    _, _, tokens = await signed_in(client)
    async with identity_app.state.database.sessionmaker() as session:
        await session.execute(
            update(Session)
            .where(Session.id == uuid.UUID(tokens["session_id"]))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    response = await client.post("/public/token/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert (response.status_code, response.json()["code"]) == (401, "invalid_refresh_token")
