"""Settings of the incidents service (environment prefix `INCIDENTS_`).

Levels (M6.1, the seed's criteria, written down as the defaults a report with
no level gets per type, and as the meaning staff apply when they set one):

- 1 (major, 重大): major economic loss, or a major security incident, or a leak
  of state secrets or financial data.
- 2 (serious, 較重大): large economic loss, or a serious security incident, or a
  leak of important customers' information.
- 3 (larger, 較大): a larger loss or a more serious incident limited in scope
  (the seed repeats level 2's wording; we read it as limited to few accounts).
- 4 (general, 一般): general loss or incident, or ordinary customers' information.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict

from services.incidents.governance.config import GovernanceSettings

LEVEL_CRITERIA: dict[int, str] = {
    1: "major: major economic loss, a major security incident, or a leak of state secrets or financial data",
    2: "serious: large economic loss, a serious security incident, or a leak of important customers' information",
    3: "larger: a larger loss or a serious incident limited to few accounts or systems",
    4: "general: general loss or incident, or ordinary customers' information",
}


class SlaTarget(BaseModel):
    model_config = {"frozen": True}

    acknowledge_minutes: int = Field(ge=1, le=7 * 24 * 60)
    resolve_minutes: int = Field(ge=1, le=90 * 24 * 60)


class ChainStep(BaseModel):
    """Who is told of an incident of a level, and within how many minutes of its opening."""

    model_config = {"frozen": True}

    audience: str = Field(min_length=1, max_length=64)
    within_minutes: int = Field(ge=1, le=7 * 24 * 60)


def _default_levels() -> dict[str, int]:
    return {
        "account_takeover": 3,
        "login_anomaly": 4,
        "fraudulent_transaction": 3,
        "intrusion": 2,
        "data_leak": 2,
        "tampering": 2,
        "insider_misuse": 2,
        "denial_of_service": 3,
        "other": 4,
    }


def _default_sla_targets() -> dict[str, SlaTarget]:
    return {
        "1": SlaTarget(acknowledge_minutes=15, resolve_minutes=4 * 60),
        "2": SlaTarget(acknowledge_minutes=30, resolve_minutes=8 * 60),
        "3": SlaTarget(acknowledge_minutes=60, resolve_minutes=24 * 60),
        "4": SlaTarget(acknowledge_minutes=4 * 60, resolve_minutes=3 * 24 * 60),
    }


def _default_chain() -> dict[str, list[ChainStep]]:
    return {
        "1": [
            ChainStep(audience="head_of_security", within_minutes=15),
            ChainStep(audience="chief_information_officer", within_minutes=30),
            ChainStep(audience="executive_board", within_minutes=60),
            ChainStep(audience="regulator", within_minutes=120),
        ],
        "2": [
            ChainStep(audience="head_of_security", within_minutes=30),
            ChainStep(audience="chief_information_officer", within_minutes=60),
            ChainStep(audience="regulator", within_minutes=24 * 60),
        ],
        "3": [ChainStep(audience="security_manager", within_minutes=4 * 60)],
        "4": [ChainStep(audience="security_manager", within_minutes=24 * 60)],
    }


class IncidentsSettings(GovernanceSettings):  # governance settings: services/incidents/governance/config.py
    model_config = SettingsConfigDict(env_prefix="INCIDENTS_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "incidents"

    default_levels: dict[str, int] = Field(
        default_factory=_default_levels,
        description="Level (1 major .. 4 general) of a report that names none, per incident type.",
    )
    takeover_verify_minutes: int = Field(
        default=10, ge=1, le=24 * 60, description="A reported account takeover is verified within this (R-II.3.2)."
    )
    takeover_freeze_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="A reported account takeover's account is frozen within this."
    )
    sla_targets: dict[str, SlaTarget] = Field(
        default_factory=_default_sla_targets,
        description="Acknowledgement and resolution targets per level (keys '1'..'4').",
    )
    sla_warn_fraction: float = Field(
        default=0.8, gt=0, lt=1, description="A clock 'nears' its deadline past this fraction: the next person is told."
    )
    reporting_chain: dict[str, list[ChainStep]] = Field(
        default_factory=_default_chain, description="Reporting up the chain per level (M6.2): audience and minutes."
    )
    regulator_deadline_hours: dict[str, int] = Field(
        default_factory=lambda: {"1": 2, "2": 24},
        description="Deadline of the regulator report per level (levels without one get no report).",
    )
    worker_enabled: bool = Field(default=True, description="Run the response worker (playbooks, clocks) here.")
    worker_poll_seconds: float = Field(default=1.0, gt=0, description="How often the response worker runs a round.")
