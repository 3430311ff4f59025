"""Audit chain head: one row holding the chain's tail, so an append is one statement.

Revision ID: 0004
Revises: 0003
"""

from kit.migrations import create_audit_head, drop_audit_head

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_head("identity")


def downgrade() -> None:
    drop_audit_head("identity")
