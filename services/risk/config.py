"""Settings of the risk service (environment prefix `RISK_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "risk"

    # Model registry (services/risk/learning): a model is promoted only when its evaluation on a
    # later window reaches every floor; replicas poll the active version this often.
    model_floor_average_precision: float = Field(default=0.5, ge=0, le=1)
    model_floor_recall_at_1pct_fpr: float = Field(default=0.4, ge=0, le=1)
    model_floor_card_precision_at_100: float = Field(default=0.0, ge=0, le=1)
    model_poll_seconds: float = Field(default=5.0, gt=0)
