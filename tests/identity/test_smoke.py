from __future__ import annotations

import httpx

from tests.identity.support import PASSWORD, register


async def test_register_and_login(client: httpx.AsyncClient) -> None:
    _, data = await register(client)
    response = await client.post("/public/login", json={"identifier": data["phone"], "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "authenticated"
