"""Settings of the permissions service (environment prefix `PERMISSIONS_`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import SettingsConfigDict

from kit.settings import ServiceSettings


class ApprovalPolicy(BaseModel):
    """Who must approve an operation before it may run.

    ``threshold_field``/``threshold`` make the policy conditional: the
    operation needs approval only when ``payload[threshold_field] >= threshold``
    (e.g. transfers from an amount up, in minor units).
    """

    model_config = {"frozen": True}

    required_approvals: int = Field(default=1, ge=1, le=10)
    approver_permission: str = Field(default="approval:approve", pattern=r"^[a-z_]+:[a-z_]+$")
    approver_role: str | None = Field(default=None, description="Approvers must also hold this role (or one above it).")
    ttl_seconds: int = Field(default=86_400, ge=60, le=30 * 86_400)
    executors: tuple[str, ...] = Field(
        default=(), description="Service client ids allowed to execute it; empty means any service."
    )
    threshold_field: str | None = None
    threshold: int | None = None
    subject_fields: tuple[str, ...] = Field(
        default=(),
        description=(
            "Payload fields naming the people the operation is about or benefits (a reader, an account, a "
            "subject); whoever they name may not decide on it, so a beneficiary is never their own checker."
        ),
    )
    description: str = ""


def default_policies() -> dict[str, ApprovalPolicy]:
    """The operations that need a second person out of the box (M1.5, R-II.2.1)."""
    return {
        "role.grant": ApprovalPolicy(
            approver_permission="grant:approve",
            ttl_seconds=7 * 86_400,
            executors=("permissions",),
            description="Grant of a role to a staff member (applied by permissions itself).",
        ),
        "role.change": ApprovalPolicy(
            approver_permission="role:modify",
            ttl_seconds=7 * 86_400,
            executors=("permissions",),
            description="Creating or changing a custom role (applied by permissions itself).",
        ),
        "subject.lift_suspension": ApprovalPolicy(
            approver_permission="suspension:lift",
            ttl_seconds=3 * 86_400,
            executors=("permissions",),
            description="Lifting the suspension of a staff member's high-risk permissions.",
        ),
        "transfer.execute": ApprovalPolicy(
            approver_permission="transfer:approve",
            ttl_seconds=3_600,
            threshold_field="amount_minor",
            threshold=5_000_000,
            # The bank's core system executes transfers: its API client (registered by identity) is the
            # only service that may consume the approval (issue 13 item 9: no policy without executors).
            executors=("core-banking",),
            subject_fields=("account_id", "customer_id"),
            description="A transfer of 50,000.00 or more (amount in minor units).",
        ),
        "account.unfreeze": ApprovalPolicy(
            approver_permission="account:unfreeze",
            ttl_seconds=86_400,
            executors=("identity",),
            subject_fields=("account_id", "customer_id", "subject"),
            description="Unfreezing a customer account frozen by risk or an incident.",
        ),
        "account.change": ApprovalPolicy(
            approver_permission="approval:approve",
            ttl_seconds=86_400,
            executors=("identity",),
            subject_fields=("account_id", "customer_id", "subject"),
            description="Staff-initiated change of a customer's account data.",
        ),
        "risk.ruleset_change": ApprovalPolicy(
            approver_permission="risk:modify",
            ttl_seconds=7 * 86_400,
            executors=("risk",),
            description="Making a proposed risk rule set version live (payload: version and rules hash).",
        ),
        "account.close": ApprovalPolicy(
            approver_permission="account:close",
            ttl_seconds=86_400,
            executors=("identity",),
            subject_fields=("account_id",),
            description="Closing any account (customer or staff): a second person approves, identity executes.",
        ),
        "vault.unmasked_read": ApprovalPolicy(
            approver_permission="approval:approve",
            approver_role="compliance_officer",
            ttl_seconds=3_600,
            executors=("vault",),
            subject_fields=("reader", "subjects"),
            description="Reading unmasked personal data (bulk or sensitive).",
        ),
        "vault.over_quota_read": ApprovalPolicy(
            approver_permission="approval:approve",
            approver_role="compliance_officer",
            ttl_seconds=3_600,
            executors=("vault",),
            subject_fields=("reader",),
            description="A read of personal data past the reader's quota for the window.",
        ),
        "vault.shred": ApprovalPolicy(
            approver_permission="approval:approve",
            ttl_seconds=86_400,
            executors=("vault",),
            subject_fields=("subject_id",),
            description="Crypto-shredding a customer's personal data (irreversible).",
        ),
        "vault.key_delete": ApprovalPolicy(
            required_approvals=2,
            approver_permission="approval:approve",
            ttl_seconds=86_400,
            executors=("vault",),
            description="Destroying a key-encryption key.",
        ),
        "incidents.playbook_change": ApprovalPolicy(
            approver_permission="incident:execute",
            ttl_seconds=7 * 86_400,
            executors=("incidents",),
            description="A new version of an incident type's response playbook (applied by incidents).",
        ),
        "risk.model_promotion": ApprovalPolicy(
            approver_permission="approval:approve",
            ttl_seconds=3 * 86_400,
            executors=("risk",),
            description="Promoting or rolling back the risk model that scores transactions.",
        ),
    }


class PermissionsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PERMISSIONS_", extra="ignore", frozen=True)
    service_name: ClassVar[str] = "permissions"

    index_refresh_seconds: float = Field(
        default=0.5,
        ge=0,
        le=5,
        description=(
            "How often each process polls the change counter to refresh its in-memory policy index; "
            "0 polls before every check. Changes made by this process apply at once."
        ),
    )
    usage_flush_seconds: float = Field(
        default=30.0, gt=0, description="How often recorded grant use (for the unused-grant report) is written."
    )
    batch_check_limit: int = Field(default=500, ge=1, le=10_000, description="Most checks in one batch request.")
    training_course: str = Field(
        default="security-awareness", description="The course whose current record high-risk roles require."
    )
    training_validity_days: int = Field(
        default=365, ge=1, description="Validity of a training record when none is given."
    )
    unused_grant_days: int = Field(
        default=90, ge=1, description="A grant unused for this long is reported as over-privilege."
    )
    max_grant_days: int = Field(default=366, ge=1, description="Longest expiry a grant may be requested with.")
    status_reporters: tuple[str, ...] = Field(
        default=("identity", "incidents"), description="Service client ids that may report a staff account status."
    )
    suspension_reporters: tuple[str, ...] = Field(
        default=("risk", "incidents"), description="Service client ids that may suspend staff permissions."
    )
    approval_policies: dict[str, ApprovalPolicy] = Field(
        default_factory=default_policies,
        description=(
            "Operation name -> approval policy (JSON in PERMISSIONS_APPROVAL_POLICIES). Configured "
            "policies add to the defaults or replace them one by one; a default is never dropped."
        ),
    )

    @field_validator("approval_policies", mode="after")
    @classmethod
    def _keep_default_policies(cls, value: dict[str, ApprovalPolicy]) -> dict[str, ApprovalPolicy]:
        # Forgetting an operation in the JSON must not silently remove its second person.
        return {**default_policies(), **value}
