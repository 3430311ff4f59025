"""API clients for systems outside the suite: a client's kind, description, author, rotation and deactivation.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "service_client",
        sa.Column("kind", sa.String(length=16), server_default="service", nullable=False),
        schema="identity",
    )
    op.add_column("service_client", sa.Column("description", sa.String(length=200), nullable=True), schema="identity")
    op.add_column("service_client", sa.Column("created_by", sa.String(length=64), nullable=True), schema="identity")
    op.add_column(
        "service_client",
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
        schema="identity",
    )
    op.add_column(
        "service_client", sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True), schema="identity"
    )


def downgrade() -> None:
    for column in ("deactivated_at", "secret_rotated_at", "created_by", "description", "kind"):
        op.drop_column("service_client", column, schema="identity")
