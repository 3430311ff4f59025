"""Catalog additions asked for by identity: creating staff accounts, closing customer accounts.

Revision ID: 0003
Revises: 0002

identity's staff routes check ``staff_account:create`` (admins) and
``account:close`` (held by nobody in 0002; customer managers close accounts,
a high-risk permission, so frozen or suspended staff cannot).
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

S = "permissions"


def _role_id(name: str) -> uuid.UUID:
    # The ids 0002 gave the shipped roles.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"bank-suite:permissions:role:{name}")


def upgrade() -> None:
    permission = sa.table(
        "permission",
        sa.column("name"),
        sa.column("resource_type"),
        sa.column("action"),
        sa.column("description"),
        sa.column("high_risk"),
        schema=S,
    )
    role_permission = sa.table(
        "role_permission", sa.column("role_id"), sa.column("permission"), sa.column("effect"), schema=S
    )
    op.bulk_insert(
        permission,
        [
            {
                "name": "staff_account:create",
                "resource_type": "staff_account",
                "action": "create",
                "description": "Create staff accounts",
                "high_risk": True,
            }
        ],
    )
    op.bulk_insert(
        role_permission,
        [
            {"role_id": _role_id("admin"), "permission": "staff_account:create", "effect": "allow"},
            {"role_id": _role_id("customer_manager"), "permission": "account:close", "effect": "allow"},
        ],
    )
    # Running processes reload their model on the next poll.
    op.execute("UPDATE permissions.policy_version SET version = version + 1 WHERE id = 1")
    op.execute(
        "INSERT INTO permissions.policy_change (version, kind) "
        "SELECT version, 'model' FROM permissions.policy_version WHERE id = 1"
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "DELETE FROM permissions.role_permission WHERE permission = 'staff_account:create' "
            "OR (permission = 'account:close' AND role_id = :manager)"
        ).bindparams(manager=_role_id("customer_manager"))
    )
    op.execute("DELETE FROM permissions.permission WHERE name = 'staff_account:create'")
