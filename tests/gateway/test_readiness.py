"""The gateway's readiness is about the gateway; the services' state is a separate status endpoint."""

from __future__ import annotations

from gateway.config import SERVICES
from tests.gateway.conftest import gateway_settings, running_gateway


async def test_services_down_leave_the_gateway_ready_and_the_status_says_which() -> None:
    async with running_gateway(gateway_settings({})) as gateway:  # every upstream unreachable
        ready = await gateway.client.get("/readyz")
        status = await gateway.client.get("/status")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert status.status_code == 503
    assert status.headers["content-type"] == "application/problem+json"
    assert status.json()["services"] == dict.fromkeys(SERVICES, "unreachable")
