"""The KPI report (R-III.3): JSON, and flattened rows for CSV."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Durations(BaseModel):
    """Seconds from the report to a state, over the incidents that reached it."""

    n: int
    p50_seconds: float | None
    p90_seconds: float | None


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
        return out
