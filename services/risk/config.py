"""Settings of the risk service (environment prefix `RISK_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class RiskSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RISK_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "risk"

    freeze_threshold: float = Field(
        default=90.0, ge=0, le=100, description="Score from which a transaction freezes the customer's account."
    )
    block_threshold: float = Field(
        default=70.0, ge=0, le=100, description="Score from which a transaction is blocked and the customer warned."
    )
    step_up_threshold: float = Field(
        default=40.0, ge=0, le=100, description="Score from which the customer must confirm with a second factor."
    )
    login_challenge_threshold: float = Field(
        default=40.0, ge=0, le=100, description="Login score from which identity is told to challenge."
    )
    login_deny_threshold: float = Field(
        default=90.0, ge=0, le=100, description="Login score from which identity is told to deny the login."
    )
    alert_threshold: float = Field(
        default=70.0, ge=0, le=100, description="Score from which a scored transaction opens an alert."
    )
    login_place_window_minutes: int = Field(
        default=15, ge=1, le=1440, description="R-II.2.2: a login elsewhere this recently makes a transaction step up."
    )
    ruleset_refresh_seconds: float = Field(
        default=1.0, ge=0, le=60, description="How often a process checks for a new live or shadow rule set."
    )
    staff_read_limit_per_hour: int = Field(
        default=200, ge=1, description="Personal-data reads by one staff member in an hour that count as abnormal."
    )
    staff_odd_hour_approvals: int = Field(
        default=3, ge=1, description="Approvals by one staff member at odd hours within a day that count as abnormal."
    )
    staff_odd_hours: tuple[int, int] = Field(
        default=(22, 6), description="Local odd hours [start, end) for staff approvals (UTC+8 clock)."
    )
    staff_timezone_offset_hours: int = Field(default=8, ge=-12, le=14, description="Offset of the staff's local clock.")
    history_batch_size: int = Field(default=5_000, ge=1, le=50_000, description="Rows per COPY batch (history import).")
    history_api_max_rows: int = Field(
        default=10_000, ge=1, description="Most rows the staff history-import API accepts in one file."
    )

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> RiskSettings:
        if not self.step_up_threshold <= self.block_threshold <= self.freeze_threshold:
            raise ValueError("thresholds must be ordered: step_up <= block <= freeze")
        return self

    # Model registry (services/risk/learning): a model is promoted only when its evaluation on a
    # later window reaches every floor; replicas poll the active version this often.
    model_floor_average_precision: float = Field(default=0.5, ge=0, le=1)
    model_floor_recall_at_1pct_fpr: float = Field(default=0.4, ge=0, le=1)
    model_floor_card_precision_at_100: float = Field(default=0.0, ge=0, le=1)
    model_poll_seconds: float = Field(default=5.0, gt=0)
