"""The KPI report (R-III.3): JSON, and flattened rows for CSV."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from services.incidents.governance.vulnerabilities.schemas import FixCycle

UNASSIGNED = "(unassigned)"
FIX_CYCLE_COLUMNS = (
    "found",
    "fixed",
    "fixed_on_time",
    "fixed_late",
    "open",
    "open_overdue",
    "accepted",
    "on_time_rate",
    "fix_days_p50",
    "fix_days_p90",
    "fix_days_mean",
)


class Durations(BaseModel):
    """Seconds from the report to a state, over the incidents that reached it."""

    n: int
    p50_seconds: float | None
    p90_seconds: float | None


class AnalystAlerts(BaseModel):
    """Risk's alerts created in the period that one analyst worked (risk's alerts summary)."""

    analyst: str | None = Field(description="The assignee, else who resolved them; null: alerts nobody took.")
    alerts: int
    open: int
    resolved: int
    outcomes: dict[str, int] = Field(description="Resolved alerts by outcome (fraud, genuine, no_action).")


class AlertsSummary(BaseModel):
    analysts: list[AnalystAlerts]


class KpiReport(BaseModel):
    start: datetime
    end: datetime
    days: float
    incidents: int
    incidents_per_day: float
    by_level: dict[str, int]
    by_type: dict[str, int]
    rate_per_day_by_level: dict[str, float]
    rate_per_day_by_type: dict[str, float]
    time_to_verify: Durations
    time_to_contain: Durations
    time_to_resolve: Durations
    sla_breaches: int
    sla_breaches_by_clock: dict[str, int]
    customer_complaints: int
    reports_by_source: dict[str, int]
    alerts_per_analyst: list[AnalystAlerts] | None = Field(
        description="Risk's alerts created in the period per analyst; null when risk could not answer."
    )
    vulnerability_fix_cycle: FixCycle = Field(
        description="The fix-cycle figures of the vulnerabilities found in the period (dates in UTC)."
    )
    sources_unavailable: list[str] = Field(
        default_factory=list, description="Services that could not answer; their figures are null."
    )

    def rows(self) -> list[tuple[str, str, str]]:
        """(metric, dimension, value) rows for the CSV form."""
        out: list[tuple[str, str, str]] = [
            ("incidents", "all", str(self.incidents)),
            ("incidents_per_day", "all", f"{self.incidents_per_day:.4f}"),
        ]
        out += [("incidents_by_level", k, str(v)) for k, v in sorted(self.by_level.items())]
        out += [("incidents_by_type", k, str(v)) for k, v in sorted(self.by_type.items())]
        out += [("rate_per_day_by_level", k, f"{v:.4f}") for k, v in sorted(self.rate_per_day_by_level.items())]
        out += [("rate_per_day_by_type", k, f"{v:.4f}") for k, v in sorted(self.rate_per_day_by_type.items())]
        for name, d in (
            ("time_to_verify", self.time_to_verify),
            ("time_to_contain", self.time_to_contain),
            ("time_to_resolve", self.time_to_resolve),
        ):
            out.append((name, "n", str(d.n)))
            out.append((name, "p50_seconds", "" if d.p50_seconds is None else f"{d.p50_seconds:.3f}"))
            out.append((name, "p90_seconds", "" if d.p90_seconds is None else f"{d.p90_seconds:.3f}"))
        out.append(("sla_breaches", "all", str(self.sla_breaches)))
        out += [("sla_breaches_by_clock", k, str(v)) for k, v in sorted(self.sla_breaches_by_clock.items())]
        out.append(("customer_complaints", "all", str(self.customer_complaints)))
        out += [("reports_by_source", k, str(v)) for k, v in sorted(self.reports_by_source.items())]
        for analyst in self.alerts_per_analyst or []:
            name = analyst.analyst or UNASSIGNED
            out.append(("alerts_per_analyst", f"{name}/alerts", str(analyst.alerts)))
            out.append(("alerts_per_analyst", f"{name}/open", str(analyst.open)))
            out.append(("alerts_per_analyst", f"{name}/resolved", str(analyst.resolved)))
            out += [("alerts_per_analyst", f"{name}/outcome/{k}", str(v)) for k, v in sorted(analyst.outcomes.items())]
        cycle = self.vulnerability_fix_cycle
        out.append(("vulnerability_fix_cycle", "target_working_days", str(cycle.target_working_days)))
        for row in cycle.rows:
            for column in FIX_CYCLE_COLUMNS:
                value = getattr(row, column)
                out.append(("vulnerability_fix_cycle", f"{row.severity}/{column}", "" if value is None else str(value)))
        out += [("source_unavailable", source, "1") for source in self.sources_unavailable]
        return out
