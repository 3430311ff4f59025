"""Kit tables: audit chain, outbox, inbox.

Revision ID: 0001
Revises:
"""

from kit.migrations import create_kit_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_kit_tables("identity")


def downgrade() -> None:
    raise RuntimeError("the first revision holds the audit chain and is never downgraded")
