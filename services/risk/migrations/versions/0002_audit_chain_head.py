"""Audit chain head: one row holding the chain's tail, so an append is one statement.

Revision ID: 0002
Revises: 0001
"""

from kit.migrations import create_audit_head, drop_audit_head

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_head("risk")


def downgrade() -> None:
    drop_audit_head("risk")
