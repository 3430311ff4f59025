"""Settings of the incidents service (environment prefix `INCIDENTS_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from services.incidents.governance.config import GovernanceSettings


class IncidentsSettings(GovernanceSettings):  # governance settings: services/incidents/governance/config.py
    model_config = SettingsConfigDict(env_prefix="INCIDENTS_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "incidents"
