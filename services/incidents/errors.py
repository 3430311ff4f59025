"""Typed errors of the incidents service (rendered as RFC 9457 problems by the kit)."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, Forbidden, NotFound


class IncidentNotFound(NotFound):
    code = "incident_not_found"
    title = "No such incident"


class InvalidTransition(Conflict):
    code = "invalid_transition"
    title = "The incident cannot move to that state"


class StepNotFound(NotFound):
    code = "step_not_found"
    title = "No such playbook step"


class StepNotActionable(Conflict):
    code = "step_not_actionable"
    title = "The step cannot be changed that way now"


class PlaybookNotFound(NotFound):
    code = "playbook_not_found"
    title = "No playbook for that type"


class InvalidPlaybook(BadRequest):
    code = "invalid_playbook"
    title = "The playbook is not valid"


class ClockNotFound(NotFound):
    code = "clock_not_found"
    title = "No such SLA clock"


class ClockNotPausable(Conflict):
    code = "clock_not_pausable"
    title = "This clock cannot be paused now"


class NotAssigned(Forbidden):
    code = "not_assigned"
    title = "Not a member of the incident's response team"


class RecordNotFound(NotFound):
    code = "record_not_found"
    title = "No such record"


class AlreadyClosed(Conflict):
    code = "already_closed"
    title = "Already closed"


class InvalidPeriod(BadRequest):
    code = "invalid_period"
    title = "The period is not valid"
