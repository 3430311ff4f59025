"""Audit chain head: one row holding the chain's tail, so an append is one statement.

Revision ID: 0003
Revises: 0002
"""

from kit.migrations import create_audit_head, drop_audit_head

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_audit_head("vault")


def downgrade() -> None:
    drop_audit_head("vault")
