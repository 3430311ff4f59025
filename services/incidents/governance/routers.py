"""The governance routers, in the order the incidents app mounts them."""

from __future__ import annotations

from fastapi import APIRouter

from services.incidents.governance.audits import endpoints as audits
from services.incidents.governance.integrity import endpoints as integrity
from services.incidents.governance.register import endpoints as register
from services.incidents.governance.retention import endpoints as retention
from services.incidents.governance.sampling import endpoints as sampling
from services.incidents.governance.vulnerabilities import endpoints as vulnerabilities

ROUTERS: tuple[APIRouter, ...] = (
    integrity.staff,
    register.staff,
    vulnerabilities.staff,
    audits.staff,
    sampling.staff,
    retention.staff,
)

OPENAPI_TAGS: list[dict[str, str]] = [
    {"name": "audit integrity", "description": "Every service's audit chain verified in one call."},
    {"name": "risk register", "description": "Risks by category and level, plans, reviews, the heat map."},
    {"name": "vulnerabilities", "description": "Fix cycles in mainland working days, overdue flags, KPI figures."},
    {"name": "audits", "description": "Plans, evidence, findings, remediation, follow-up, reports in HTML and PDF."},
    {"name": "retention", "description": "Archive, then purge governance records past their retention."},
]
