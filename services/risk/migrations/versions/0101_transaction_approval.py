"""The core system's transfer approval kept with each scored transaction (sampling audits).

Revision ID: 0101
Revises: 0100
"""

import sqlalchemy as sa
from alembic import op

revision = "0101"
down_revision = "0100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scored_transaction", sa.Column("approval_id", sa.String(64), nullable=True), schema="risk")


def downgrade() -> None:
    op.drop_column("scored_transaction", "approval_id", schema="risk")
