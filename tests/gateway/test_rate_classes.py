"""The identity routes' rate classes, with the real route table (issue 12, item 6)."""

from __future__ import annotations

import pytest

from gateway.config import DEFAULT_ROUTES_DIR, SERVICES, GatewaySettings
from gateway.policy import load_policy
from tests.gateway.conftest import Stub, gateway_settings, running_gateway


@pytest.mark.parametrize(
    ("path", "rate_class"),
    [
        ("/v1/identity/public/login", "login"),
        ("/v1/identity/public/login/challenge/abc/verify", "otp"),
        ("/v1/identity/public/password/reset/start", "otp"),
        ("/v1/identity/me/step-up", "otp"),
        ("/v1/identity/public/register", "register"),
        ("/v1/identity/public/register/verify", "register"),
        ("/v1/identity/public/register/resend", "register"),
        ("/v1/identity/public/oauth/token", "token"),
    ],
)
def test_each_sensitive_identity_route_has_its_class(path: str, rate_class: str) -> None:
    route = load_policy(DEFAULT_ROUTES_DIR, SERVICES).match("identity", path)
    assert route is not None
    assert route.rate_class == rate_class


def test_every_class_of_the_route_table_has_a_default_limit() -> None:
    used = {route.rate_class for route in load_policy(DEFAULT_ROUTES_DIR, SERVICES).routes} - {"default"}
    assert used <= set(GatewaySettings(environment="test").rate_limit_classes)


async def test_classes_do_not_share_budgets(stub: Stub) -> None:
    settings = gateway_settings(
        dict.fromkeys(SERVICES, stub.url),
        routes_dir=DEFAULT_ROUTES_DIR,
        rate_limit_classes={"login": "2/minute", "otp": "2/minute", "register": "2/minute", "token": "2/minute"},
    )
    async with running_gateway(settings) as gw:
        # Someone at this address spends the login and one-time-code budgets ...
        for path in ("/v1/identity/public/login", "/v1/identity/public/login/challenge/c/verify"):
            codes = [(await gw.client.post(path, json={})).status_code for _ in range(3)]
            assert codes[-1] == 429, path
        # ... a service's token request and a customer's sign-up from the same address still pass.
        token = await gw.client.post("/v1/identity/public/oauth/token", data={"grant_type": "client_credentials"})
        assert token.status_code == 401  # forwarded: identity (the stub) judged the credentials
        for path in ("/v1/identity/public/register", "/v1/identity/public/register/verify"):
            assert (await gw.client.post(path, json={})).status_code == 200, path
        # And registration has a budget of its own.
        refused = await gw.client.post("/v1/identity/public/register/resend", json={})
        assert refused.status_code == 429
        assert refused.headers["ratelimit-policy"] == '"register";q=2;w=60'
