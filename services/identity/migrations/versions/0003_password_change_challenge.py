"""Login challenges for a forced password change (one-time or expired passwords).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "login_challenge",
        sa.Column("purpose", sa.String(length=32), server_default="second_factor", nullable=False),
        schema="identity",
    )
    op.add_column(
        "login_challenge",
        sa.Column("amr", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        schema="identity",
    )


def downgrade() -> None:
    op.drop_column("login_challenge", "amr", schema="identity")
    op.drop_column("login_challenge", "purpose", schema="identity")
