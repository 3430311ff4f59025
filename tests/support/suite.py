"""Building the real apps for tests: settings pointed at the test database and at each other."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from pydantic import SecretStr

from gateway.app import create as create_gateway
from gateway.config import SERVICES, GatewaySettings
from services.identity.app import create as create_identity
from services.identity.config import IdentitySettings
from services.incidents.app import create as create_incidents
from services.incidents.config import IncidentsSettings
from services.permissions.app import create as create_permissions
from services.permissions.config import PermissionsSettings
from services.risk.app import create as create_risk
from services.risk.config import RiskSettings
from services.vault.app import create as create_vault
from services.vault.config import VaultSettings

SERVICE_BUILDERS: dict[str, tuple[type[Any], Callable[[Any], FastAPI]]] = {
    "identity": (IdentitySettings, create_identity),
    "permissions": (PermissionsSettings, create_permissions),
    "vault": (VaultSettings, create_vault),
    "risk": (RiskSettings, create_risk),
    "incidents": (IncidentsSettings, create_incidents),
}


def service_settings(name: str, database_url: str, gateway_url: str = "http://127.0.0.1:9", **overrides: Any) -> Any:
    settings_cls, _ = SERVICE_BUILDERS[name]
    return settings_cls(
        environment="test",
        database_url=SecretStr(database_url),
        gateway_url=gateway_url,
        log_json=False,
        outbox_poll_seconds=0.2,
        **overrides,
    )


def build_service(name: str, database_url: str, gateway_url: str = "http://127.0.0.1:9", **overrides: Any) -> FastAPI:
    _, factory = SERVICE_BUILDERS[name]
    return factory(service_settings(name, database_url, gateway_url, **overrides))


def suite_factories(
    database_url: str,
    services: tuple[str, ...] = SERVICES,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Callable[[Mapping[str, str]], FastAPI]]:
    """Factories for :func:`tests.support.live.live_suite`: the gateway first, then services."""
    overrides = overrides or {}

    def gateway(urls: Mapping[str, str]) -> FastAPI:
        values: dict[str, Any] = {f"{name}_url": urls.get(name, "http://127.0.0.1:9") for name in SERVICES}
        values.update(environment="test", log_json=False, **overrides.get("gateway", {}))
        return create_gateway(GatewaySettings(**values))

    def service(name: str) -> Callable[[Mapping[str, str]], FastAPI]:
        def build(urls: Mapping[str, str]) -> FastAPI:
            return build_service(name, database_url, urls["gateway"], **overrides.get(name, {}))

        return build

    factories: dict[str, Callable[[Mapping[str, str]], FastAPI]] = {"gateway": gateway}
    factories.update({name: service(name) for name in services})
    return factories
