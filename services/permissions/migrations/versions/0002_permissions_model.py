"""Permissions model: catalog, roles, grants, SoD, training, suspensions, approvals, reviews; default roles.

Revision ID: 0002
Revises: 0001

The seed below is frozen with this revision: later changes to the default
roles come in their own revisions.
"""

import uuid
from datetime import datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

S = "permissions"

# name, description, high-risk
PERMISSIONS: list[tuple[str, str, bool]] = [
    ("account:read", "Read a customer account's status and profile (masked)", False),
    ("account:modify", "Change a customer's account data", True),
    ("account:freeze", "Freeze a customer account", False),
    ("account:unfreeze", "Unfreeze a customer account", True),
    ("account:close", "Close a customer account", True),
    ("funds:read", "Read customer balances and transactions", True),
    ("payment:make", "Initiate a payment (maker)", True),
    ("payment:check", "Check and release a payment (checker)", True),
    ("transfer:approve", "Approve a large transfer", True),
    ("vault:read", "Read personal data masked", False),
    ("vault:decrypt", "Read personal data unmasked", True),
    ("vault:key_rotate", "Rotate encryption keys", True),
    ("vault:key_delete", "Destroy an encryption key", True),
    ("system:maintain", "Patch, configure and deploy the systems", True),
    ("log:read", "Read operation and system logs", False),
    ("login_log:read", "Read the login log", False),
    ("audit:read", "Read audit trails, findings and reports", False),
    ("audit:verify", "Verify the tamper-evident audit chains", False),
    ("risk:read", "Read risk scores, rules and the risk register", False),
    ("risk:modify", "Change risk rules and models", True),
    ("alert:read", "Read risk alerts", False),
    ("alert:modify", "Label and route risk alerts", False),
    ("incident:read", "Read incidents", False),
    ("incident:modify", "Report and update incidents", False),
    ("incident:execute", "Run containment playbooks", True),
    ("session:revoke", "Revoke a customer's sessions", False),
    ("approval:read", "Read approvals", False),
    ("approval:create", "Ask for an approval of a high-risk operation", False),
    ("approval:approve", "Approve or reject others' high-risk operations", True),
    ("permission:read", "Read roles, grants and other staff members' permissions", False),
    ("grant:request", "Ask for a role grant for another staff member", False),
    ("grant:approve", "Approve role grants", True),
    ("grant:revoke", "Revoke role grants", False),
    ("role:modify", "Change roles and segregation-of-duties rules", True),
    ("review:manage", "Run access-review campaigns", False),
    ("review:certify", "Certify or revoke the grants of one's staff", False),
    ("training:record", "Record completed security trainings", False),
    ("suspension:create", "Suspend a staff member's high-risk permissions", False),
    ("suspension:lift", "Approve lifting a suspension", True),
]

# name, parent, high-risk, description, allowed, denied
ROLES: list[tuple[str, str | None, bool, str, list[str], list[str]]] = [
    ("restricted_user", None, False, "Level 4 (RestrictedUser): sees approvals only", ["approval:read"], []),
    (
        "user",
        "restricted_user",
        False,
        "Level 3 (User): everyday staff member",
        ["approval:create", "grant:request", "incident:read", "alert:read", "risk:read"],
        [],
    ),
    (
        "manager",
        "user",
        False,
        "Level 2 (Manager): reviews the access of their staff",
        ["review:certify", "permission:read"],
        [],
    ),
    (
        "admin",
        "manager",
        True,
        "Level 1 (Admin): administers roles, grants, trainings and reviews",
        [
            "grant:approve",
            "grant:revoke",
            "role:modify",
            "review:manage",
            "training:record",
            "suspension:create",
            "suspension:lift",
            "audit:read",
        ],
        [],
    ),
    (
        "teller",
        "user",
        False,
        "Counter staff: serves customers, initiates payments",
        ["account:read", "funds:read", "vault:read", "payment:make"],
        [],
    ),
    (
        "customer_manager",
        "user",
        False,
        "Relationship manager: maintains customer accounts",
        ["account:read", "account:modify", "funds:read", "vault:read", "account:freeze"],
        [],
    ),
    (
        "approver",
        "user",
        True,
        "Checker of payments, transfers and other high-risk operations",
        ["approval:approve", "payment:check", "transfer:approve", "funds:read", "account:read"],
        [],
    ),
    (
        "compliance_officer",
        "user",
        True,
        "Compliance: audits access, unfreezes accounts, reads unmasked data with approval",
        [
            "audit:read",
            "log:read",
            "login_log:read",
            "account:read",
            "vault:read",
            "vault:decrypt",
            "account:unfreeze",
            "permission:read",
            "approval:approve",
        ],
        [],
    ),
    (
        "auditor",
        "user",
        False,
        "Internal auditor: read-only access to logs and audit trails",
        ["audit:read", "audit:verify", "log:read", "login_log:read", "permission:read"],
        [],
    ),
    (
        "system_admin",
        "user",
        True,
        "Maintains the systems and reads logs; never customer funds or personal data (R-II.2.1)",
        ["system:maintain", "log:read", "vault:key_rotate", "session:revoke"],
        ["funds:read", "vault:read", "vault:decrypt", "account:read", "account:modify"],
    ),
    (
        "risk_analyst",
        "user",
        True,
        "Maintains risk rules, handles alerts",
        ["risk:read", "risk:modify", "alert:read", "alert:modify", "account:read", "account:freeze", "login_log:read"],
        [],
    ),
    (
        "incident_responder",
        "user",
        True,
        "Runs incident response and containment",
        [
            "incident:read",
            "incident:modify",
            "incident:execute",
            "account:freeze",
            "session:revoke",
            "alert:read",
            "log:read",
        ],
        [],
    ),
]

SOD_RULES: list[tuple[str, str, str]] = [
    ("teller", "approver", "the maker of a payment is never its checker"),
    ("system_admin", "auditor", "who runs the systems does not audit them"),
    ("system_admin", "compliance_officer", "who runs the systems does not oversee their compliance"),
]


def _timestamps() -> sa.Column[datetime]:
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "permission",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("resource_type", sa.String(50), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("high_risk", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_permission"),
        schema=S,
    )
    op.create_table(
        "role",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("high_risk", sa.Boolean(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        _timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_role"),
        sa.UniqueConstraint("name", name="uq_role_name"),
        sa.ForeignKeyConstraint(["parent_id"], [f"{S}.role.id"], name="fk_role_parent_id_role"),
        schema=S,
    )
    op.create_table(
        "role_permission",
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("permission", sa.String(100), nullable=False),
        sa.Column("effect", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("role_id", "permission", name="pk_role_permission"),
        sa.ForeignKeyConstraint(
            ["role_id"], [f"{S}.role.id"], ondelete="CASCADE", name="fk_role_permission_role_id_role"
        ),
        sa.ForeignKeyConstraint(
            ["permission"], [f"{S}.permission.name"], name="fk_role_permission_permission_permission"
        ),
        sa.CheckConstraint("effect IN ('allow', 'deny')", name="ck_role_permission_effect"),
        schema=S,
    )
    op.create_table(
        "sod_rule",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("role_a_id", sa.Uuid(), nullable=False),
        sa.Column("role_b_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_sod_rule"),
        sa.UniqueConstraint("role_a_id", "role_b_id", name="uq_sod_rule_role_a_id_role_b_id"),
        sa.ForeignKeyConstraint(["role_a_id"], [f"{S}.role.id"], ondelete="CASCADE", name="fk_sod_rule_role_a_id_role"),
        sa.ForeignKeyConstraint(["role_b_id"], [f"{S}.role.id"], ondelete="CASCADE", name="fk_sod_rule_role_b_id_role"),
        sa.CheckConstraint("role_a_id <> role_b_id", name="ck_sod_rule_distinct_roles"),
        schema=S,
    )
    op.create_table(
        "approval",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("approver_permission", sa.String(100), nullable=False),
        sa.Column("approver_role", sa.String(64), nullable=True),
        sa.Column("excluded_approvers", postgresql.JSONB(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _timestamps(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_approval"),
        sa.CheckConstraint(
            "state IN ('pending', 'approved', 'rejected', 'expired', 'executed')", name="ck_approval_state"
        ),
        sa.CheckConstraint("required_approvals >= 1", name="ck_approval_required_approvals"),
        schema=S,
    )
    op.create_index("ix_approval_operation", "approval", ["operation"], schema=S)
    op.create_index("ix_approval_requested_by", "approval", ["requested_by"], schema=S)
    op.create_index("ix_approval_state", "approval", ["state"], schema=S)
    op.create_table(
        "approval_decision",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        _timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_approval_decision"),
        sa.UniqueConstraint("approval_id", "actor", name="uq_approval_decision_approval_id_actor"),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            [f"{S}.approval.id"],
            ondelete="CASCADE",
            name="fk_approval_decision_approval_id_approval",
        ),
        sa.CheckConstraint("decision IN ('approve', 'reject')", name="ck_approval_decision_decision"),
        schema=S,
    )
    op.create_table(
        "approval_comment",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=False),
        sa.Column("author", sa.String(64), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        _timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_approval_comment"),
        sa.ForeignKeyConstraint(
            ["approval_id"],
            [f"{S}.approval.id"],
            ondelete="CASCADE",
            name="fk_approval_comment_approval_id_approval",
        ),
        schema=S,
    )
    op.create_index("ix_approval_comment_approval_id", "approval_comment", ["approval_id"], schema=S)
    op.create_table(
        "role_grant",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("role_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(128), nullable=True),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("approved_by", sa.String(64), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=True),
        _timestamps(),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_by", sa.String(64), nullable=True),
        sa.Column("revoke_reason", sa.Text(), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("certified_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_role_grant"),
        sa.ForeignKeyConstraint(["role_id"], [f"{S}.role.id"], name="fk_role_grant_role_id_role"),
        sa.ForeignKeyConstraint(["approval_id"], [f"{S}.approval.id"], name="fk_role_grant_approval_id_approval"),
        schema=S,
    )
    op.create_index("ix_role_grant_subject", "role_grant", ["subject"], schema=S)
    op.create_index(
        "uq_role_grant_live",
        "role_grant",
        ["subject", "role_id", sa.text("coalesce(scope, '')")],
        unique=True,
        schema=S,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_table(
        "subject_status",
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("subject", name="pk_subject_status"),
        sa.CheckConstraint("status IN ('active', 'frozen', 'closed')", name="ck_subject_status_status"),
        schema=S,
    )
    op.create_table(
        "suspension",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        _timestamps(),
        sa.Column("lifted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(64), nullable=True),
        sa.Column("lift_approval_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_suspension"),
        sa.ForeignKeyConstraint(
            ["lift_approval_id"], [f"{S}.approval.id"], name="fk_suspension_lift_approval_id_approval"
        ),
        schema=S,
    )
    op.create_index(
        "uq_suspension_active",
        "suspension",
        ["subject"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("lifted_at IS NULL"),
    )
    op.create_table(
        "training_record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("course", sa.String(100), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("recorded_by", sa.String(64), nullable=False),
        _timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_training_record"),
        schema=S,
    )
    op.create_index("ix_training_record_subject", "training_record", ["subject"], schema=S)
    op.create_table(
        "policy_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_version"),
        schema=S,
    )
    op.create_table(
        "policy_change",
        sa.Column("version", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=True),
        _timestamps(),
        sa.PrimaryKeyConstraint("version", name="pk_policy_change"),
        schema=S,
    )
    op.create_table(
        "review_campaign",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        _timestamps(),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_review_campaign"),
        schema=S,
    )
    op.create_table(
        "review_item",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("grant_id", sa.Uuid(), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("role_name", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(64), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_review_item"),
        sa.UniqueConstraint("campaign_id", "grant_id", name="uq_review_item_campaign_id_grant_id"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            [f"{S}.review_campaign.id"],
            ondelete="CASCADE",
            name="fk_review_item_campaign_id_review_campaign",
        ),
        sa.ForeignKeyConstraint(["grant_id"], [f"{S}.role_grant.id"], name="fk_review_item_grant_id_role_grant"),
        sa.CheckConstraint("decision IN ('pending', 'certified', 'revoked')", name="ck_review_item_decision"),
        schema=S,
    )
    op.create_index("ix_review_item_campaign_id", "review_item", ["campaign_id"], schema=S)
    op.create_index("ix_review_item_reviewer", "review_item", ["reviewer"], schema=S)
    _seed()


def _seed() -> None:
    permission = sa.table(
        "permission",
        sa.column("name"),
        sa.column("resource_type"),
        sa.column("action"),
        sa.column("description"),
        sa.column("high_risk"),
        schema=S,
    )
    role = sa.table(
        "role",
        sa.column("id"),
        sa.column("name"),
        sa.column("description"),
        sa.column("parent_id"),
        sa.column("high_risk"),
        sa.column("builtin"),
        schema=S,
    )
    role_permission = sa.table(
        "role_permission", sa.column("role_id"), sa.column("permission"), sa.column("effect"), schema=S
    )
    sod = sa.table(
        "sod_rule",
        sa.column("id"),
        sa.column("role_a_id"),
        sa.column("role_b_id"),
        sa.column("reason"),
        sa.column("created_by"),
        schema=S,
    )
    op.bulk_insert(
        permission,
        [
            {
                "name": name,
                "resource_type": name.split(":")[0],
                "action": name.split(":")[1],
                "description": description,
                "high_risk": high_risk,
            }
            for name, description, high_risk in PERMISSIONS
        ],
    )
    ids = {name: uuid.uuid5(uuid.NAMESPACE_URL, f"bank-suite:permissions:role:{name}") for name, *_ in ROLES}
    op.bulk_insert(
        role,
        [
            {
                "id": ids[name],
                "name": name,
                "description": description,
                "parent_id": ids[parent] if parent else None,
                "high_risk": high_risk,
                "builtin": True,
            }
            for name, parent, high_risk, description, _, _ in ROLES
        ],
    )
    op.bulk_insert(
        role_permission,
        [
            {"role_id": ids[name], "permission": perm, "effect": "allow"}
            for name, _, _, _, allowed, _ in ROLES
            for perm in allowed
        ]
        + [
            {"role_id": ids[name], "permission": perm, "effect": "deny"}
            for name, _, _, _, _, denied in ROLES
            for perm in denied
        ],
    )
    op.bulk_insert(
        sod,
        [
            {"id": uuid.uuid4(), "role_a_id": ids[a], "role_b_id": ids[b], "reason": reason, "created_by": "seed"}
            for a, b, reason in SOD_RULES
        ],
    )
    op.bulk_insert(
        sa.table("policy_version", sa.column("id"), sa.column("version"), schema=S), [{"id": 1, "version": 0}]
    )


def downgrade() -> None:
    for table in (
        "review_item",
        "review_campaign",
        "policy_change",
        "policy_version",
        "training_record",
        "suspension",
        "subject_status",
        "role_grant",
        "approval_comment",
        "approval_decision",
        "approval",
        "sod_rule",
        "role_permission",
        "role",
        "permission",
    ):
        op.drop_table(table, schema=S)
