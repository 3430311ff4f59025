"""The rules sampled items are held to (pure functions)."""

from __future__ import annotations

from typing import Any

from services.incidents.governance.sampling.rules import grant_exceptions, read_exceptions, transfer_exceptions

DECISION = {"transaction_id": "t-1", "amount_minor": 60_000_000, "currency": "CNY", "approval_id": "a-1"}


def approval(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "operation": "transfer.execute",
        "payload": {"amount_minor": 60_000_000},
        "state": "executed",
        "requested_by": "maker",
        "required_approvals": 1,
        "decisions": [{"actor": "checker", "decision": "approve"}],
    }
    body.update(overrides)
    return body


def codes(found: list[Any]) -> list[str]:
    return [d.code for d in found]


def test_a_complete_approval_passes() -> None:
    assert transfer_exceptions(DECISION, approval()) == []


def test_transfer_deviations() -> None:
    assert codes(transfer_exceptions({**DECISION, "approval_id": None}, None)) == ["missing_approval"]
    assert codes(transfer_exceptions(DECISION, None)) == ["approval_not_found"]
    assert codes(transfer_exceptions(DECISION, approval(state="pending"))) == ["incomplete_approval"]
    self_approved = approval(decisions=[{"actor": "maker", "decision": "approve"}])
    assert codes(transfer_exceptions(DECISION, self_approved)) == ["incomplete_approval"]
    two_needed = approval(required_approvals=2)
    assert codes(transfer_exceptions(DECISION, two_needed)) == ["incomplete_approval"]
    other = approval(operation="role.grant", payload={"amount_minor": 1})
    assert codes(transfer_exceptions(DECISION, other)) == ["approval_for_other_operation", "approval_amount_mismatch"]


def test_read_deviations() -> None:
    fine = {"seq": 1, "actor": "s", "purpose": "fraud_investigation", "approval_required": False}
    assert read_exceptions(fine) == []
    assert codes(read_exceptions({**fine, "purpose": None})) == ["no_purpose"]
    needs = {**fine, "approval_required": True}
    assert codes(read_exceptions(needs)) == ["missing_approval"]
    assert codes(read_exceptions({**needs, "approval_id": "a", "approved_by": ["s"]})) == ["no_second_person"]
    assert read_exceptions({**needs, "approval_id": "a", "approved_by": ["other"]}) == []


def test_grant_deviations() -> None:
    trained = {"course": "c", "completed_at": "2026-01-01T00:00:00Z", "expires_at": "2027-01-01T00:00:00Z"}
    fine = {"id": "g", "subject": "s", "role": "admin", "requested_by": "s", "approved_by": "a", "training": trained}
    assert grant_exceptions(fine) == []
    assert codes(grant_exceptions({**fine, "approved_by": "s"})) == ["no_second_person"]
    assert codes(grant_exceptions({**fine, "training": None})) == ["no_training_record"]
