"""Gateway settings (environment prefix ``GATEWAY_``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import SuiteSettings

SERVICES = ("identity", "permissions", "vault", "risk", "incidents")


class GatewaySettings(SuiteSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "gateway"

    identity_url: str = Field(default="http://127.0.0.1:8001", description="Upstream of /v1/identity.")
    permissions_url: str = Field(default="http://127.0.0.1:8002", description="Upstream of /v1/permissions.")
    vault_url: str = Field(default="http://127.0.0.1:8003", description="Upstream of /v1/vault.")
    risk_url: str = Field(default="http://127.0.0.1:8004", description="Upstream of /v1/risk.")
    incidents_url: str = Field(default="http://127.0.0.1:8005", description="Upstream of /v1/incidents.")
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_max_connections: int = Field(default=200, ge=1)

    def upstreams(self) -> dict[str, str]:
        return {name: getattr(self, f"{name}_url").rstrip("/") for name in SERVICES}
