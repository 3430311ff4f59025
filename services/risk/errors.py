"""Domain errors of the risk service (rendered as RFC 9457 problems by the kit)."""

from __future__ import annotations

from kit.errors import BadRequest, Conflict, NotFound


class InvalidRule(BadRequest):
    code = "invalid_rule"
    title = "A rule does not compile or does not answer true/false"


class RuleSetNotFound(NotFound):
    code = "ruleset_not_found"
    title = "No such rule set version"


class RuleSetState(Conflict):
    code = "ruleset_state"
    title = "The rule set is not in a state that allows this"


class AlertNotFound(NotFound):
    code = "alert_not_found"
    title = "No such alert"


class AlertResolved(Conflict):
    code = "alert_resolved"
    title = "The alert is already resolved"


class ListEntryNotFound(NotFound):
    code = "list_entry_not_found"
    title = "No such list entry"


class InvalidImport(BadRequest):
    code = "invalid_import"
    title = "The file cannot be imported"


class TransactionNotFound(NotFound):
    code = "transaction_not_found"
    title = "No such scored transaction"


class InvalidPeriod(BadRequest):
    code = "invalid_period"
    title = "The period is not valid"
