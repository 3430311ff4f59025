"""Settings of the permissions service (environment prefix `PERMISSIONS_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class PermissionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PERMISSIONS_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "permissions"
