"""Per-reader read quotas: records read per staff member and window, and the alerts sent to risk.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def upgrade() -> None:
    op.create_table(
        "read_usage",
        sa.Column("reader", sa.String(200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("reader", "window_start", name="pk_read_usage"),
        schema=SCHEMA,
    )
    op.create_table(
        "read_quota_alert",
        sa.Column("reader", sa.String(200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("reader", "window_start", name="pk_read_quota_alert"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("read_quota_alert", schema=SCHEMA)
    op.drop_table("read_usage", schema=SCHEMA)
