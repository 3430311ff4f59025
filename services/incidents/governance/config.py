"""Settings of the governance half of the incidents service (environment prefix `INCIDENTS_`)."""

from __future__ import annotations

from pydantic import Field, model_validator

from kit.retention import AUDIT_RECORD_MIN_DAYS, RetentionPeriod, check_retention
from kit.settings import ServiceSettings

SUITE_SERVICES = ("identity", "permissions", "vault", "risk", "incidents")


class GovernanceSettings(ServiceSettings):
    """Base of ``IncidentsSettings``: the register, vulnerabilities, audits and retention."""

    audit_verify_services: tuple[str, ...] = Field(
        default=SUITE_SERVICES,
        description="Services whose audit chains the suite-wide verification asks (through the gateway).",
    )
    vulnerability_fix_working_days: int = Field(
        default=15,
        ge=1,
        le=250,
        description="Default fix cycle of a vulnerability, in mainland working days (R-III.3.1: at most 15).",
    )
    risk_review_interval_days: int = Field(
        default=180, ge=1, le=730, description="Default interval between two reviews of a register risk."
    )
    sampling_transfer_threshold_minor: int = Field(
        default=50_000_000,
        ge=1,
        description="Transfers from this amount up (minor units; 500,000.00) must carry a complete approval.",
    )
    sampling_page_limit: int = Field(
        default=200, ge=1, le=10_000, description="Pages a sampling job reads from one source before it stops."
    )
    incident_file_retention_days: int = Field(
        default=AUDIT_RECORD_MIN_DAYS,
        description="Closed incidents' files, audits and governance records are kept this long (at least 5 years).",
    )
    archive_dir: str = Field(
        default=".data/archive",
        description="Where purge jobs write the archive export (JSON lines) before they delete anything.",
    )

    @model_validator(mode="after")
    def _retention_minimums(self) -> GovernanceSettings:
        check_retention(
            self.environment,
            {"incident_file_retention_days": RetentionPeriod(self.incident_file_retention_days, AUDIT_RECORD_MIN_DAYS)},
        )
        return self
