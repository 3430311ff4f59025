"""Typed errors of the governance half (rendered as RFC 9457 problems by the kit)."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, NotFound


class RiskNotFound(NotFound):
    code = "risk_not_found"
    title = "No such risk in the register"


class VulnerabilityNotFound(NotFound):
    code = "vulnerability_not_found"
    title = "No such vulnerability"


class AuditNotFound(NotFound):
    code = "audit_not_found"
    title = "No such audit"


class FindingNotFound(NotFound):
    code = "finding_not_found"
    title = "No such finding"


class RemediationNotFound(NotFound):
    code = "remediation_not_found"
    title = "No such remediation action"


class InvalidPeriod(BadRequest):
    code = "invalid_period"
    title = "The period is empty or reversed"


class InvalidState(Conflict):
    code = "invalid_state"
    title = "Not possible in the current state"


class SourceUnavailable(Conflict):
    code = "source_unavailable"
    title = "A service the job reads from did not answer"
