"""Settings of the risk service (environment prefix `RISK_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "risk"
