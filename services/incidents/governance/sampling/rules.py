"""The rules each sampled item is held to: pure functions from the item to its exceptions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.incidents.governance.audits.schemas import Rating

TRANSFER_OPERATION = "transfer.execute"
#: Risk decisions after which no transfer happened: nothing to approve.
NOT_EXECUTED = frozenset({"block", "freeze"})
APPROVED_STATES = frozenset({"approved", "executed"})


@dataclass(frozen=True, slots=True)
class Deviation:
    item: str
    code: str
    title: str
    description: str
    rating: Rating
    detail: dict[str, Any] = field(default_factory=dict)


def transfer_exceptions(decision: dict[str, Any], approval: dict[str, Any] | None) -> list[Deviation]:
    """A large transfer needs an approval of ``transfer.execute`` for its amount, approved by enough others."""
    txn = str(decision.get("transaction_id"))
    amount = decision.get("amount_minor")
    base = {"transaction_id": txn, "amount_minor": amount, "currency": decision.get("currency")}
    approval_id = decision.get("approval_id")
    if not approval_id:
        return [
            Deviation(
                txn,
                "missing_approval",
                f"Transfer {txn} without approval",
                f"A transfer of {amount} minor units carries no approval.",
                Rating.critical,
                base,
            )
        ]
    base["approval_id"] = str(approval_id)
    if approval is None:
        return [
            Deviation(
                txn,
                "approval_not_found",
                f"Transfer {txn}: approval not found",
                f"The approval {approval_id} the transfer names does not exist.",
                Rating.critical,
                base,
            )
        ]
    found: list[Deviation] = []
    if approval.get("operation") != TRANSFER_OPERATION:
        found.append(
            Deviation(
                txn,
                "approval_for_other_operation",
                f"Transfer {txn}: approval of another operation",
                f"The approval is for {approval.get('operation')}, not {TRANSFER_OPERATION}.",
                Rating.high,
                base,
            )
        )
    payload = approval.get("payload")
    if isinstance(payload, dict) and "amount_minor" in payload and payload["amount_minor"] != amount:
        found.append(
            Deviation(
                txn,
                "approval_amount_mismatch",
                f"Transfer {txn}: approved amount differs",
                f"Approved {payload['amount_minor']}, transferred {amount} (minor units).",
                Rating.high,
                base,
            )
        )
    requester = approval.get("requested_by")
    approvers = {str(d.get("actor")) for d in approval.get("decisions", []) if d.get("decision") == "approve"} - {
        str(requester)
    }
    required = int(approval.get("required_approvals") or 1)
    if approval.get("state") not in APPROVED_STATES or len(approvers) < required:
        found.append(
            Deviation(
                txn,
                "incomplete_approval",
                f"Transfer {txn}: incomplete approval",
                f"Approval state {approval.get('state')}; {len(approvers)} approver(s) other than the requester, "
                f"{required} required.",
                Rating.high,
                {**base, "approvers": sorted(approvers)},
            )
        )
    return found


def read_exceptions(read: dict[str, Any]) -> list[Deviation]:
    """An unmasked read names its purpose; where the policy asks, it carries an approval by someone else."""
    item = f"vault#{read.get('seq')}"
    base = {"seq": read.get("seq"), "actor": read.get("actor"), "fields": read.get("fields", [])}
    found: list[Deviation] = []
    if not read.get("purpose"):
        found.append(
            Deviation(
                item,
                "no_purpose",
                f"Unmasked read {item} without purpose",
                "An unmasked read of personal data recorded no purpose.",
                Rating.high,
                base,
            )
        )
    if read.get("approval_required"):
        approvers = {str(a) for a in read.get("approved_by", [])} - {str(read.get("actor"))}
        if not read.get("approval_id"):
            found.append(
                Deviation(
                    item,
                    "missing_approval",
                    f"Unmasked read {item} without the required approval",
                    "The vault's policy asks an approval for this read; none was recorded.",
                    Rating.critical,
                    base,
                )
            )
        elif not approvers:
            found.append(
                Deviation(
                    item,
                    "no_second_person",
                    f"Unmasked read {item} approved by nobody else",
                    "The approval names no approver other than the reader.",
                    Rating.high,
                    base,
                )
            )
    return found


def grant_exceptions(grant: dict[str, Any]) -> list[Deviation]:
    """A high-risk role is granted by a second person, to someone trained at the time."""
    item = f"grant:{grant.get('id')}"
    base = {"grant_id": grant.get("id"), "subject": grant.get("subject"), "role": grant.get("role")}
    found: list[Deviation] = []
    approver = str(grant.get("approved_by") or "")
    if not approver or approver in {str(grant.get("requested_by")), str(grant.get("subject"))}:
        found.append(
            Deviation(
                item,
                "no_second_person",
                f"High-risk role {grant.get('role')} granted without a second person",
                f"Requested by {grant.get('requested_by')}, approved by {approver or 'nobody'}.",
                Rating.critical,
                base,
            )
        )
    if grant.get("training") is None:
        found.append(
            Deviation(
                item,
                "no_training_record",
                f"High-risk role {grant.get('role')} granted without training",
                "No training record was in force when the role was granted.",
                Rating.medium,
                base,
            )
        )
    return found
