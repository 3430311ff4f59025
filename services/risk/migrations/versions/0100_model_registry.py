"""Model registry: trained model versions (file bytes, hash, metrics, windows) and their promotions.

Revision ID: 0100
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0100"
down_revision = "0003"
branch_labels = None
depends_on = None

S = "risk"


def upgrade() -> None:
    op.create_table(
        "model_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), sa.Identity(always=False), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("format", sa.String(32), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("model", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("feature_names", postgresql.JSONB(), nullable=False),
        sa.Column("metrics", postgresql.JSONB(), nullable=True),
        sa.Column("params", postgresql.JSONB(), nullable=False),
        sa.Column("train_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("train_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("test_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("activated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approval_id", sa.Uuid(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_model_version"),
        sa.UniqueConstraint("number", name="uq_model_version_number"),
        sa.CheckConstraint("state IN ('candidate', 'active', 'retired')", name="ck_model_version_state"),
        schema=S,
    )
    op.create_index(
        "model_version_one_active",
        "model_version",
        ["state"],
        unique=True,
        schema=S,
        postgresql_where=sa.text("state = 'active'"),
    )
    op.create_table(
        "model_change",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_version", sa.Uuid(), nullable=True),
        sa.Column("to_version", sa.Uuid(), nullable=False),
        sa.Column("approval_id", sa.Uuid(), nullable=False),
        sa.Column("approved_by", postgresql.JSONB(), nullable=False),
        sa.Column("executed_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_model_change"),
        sa.ForeignKeyConstraint(
            ["from_version"], [f"{S}.model_version.id"], name="fk_model_change_from_version_model_version"
        ),
        sa.ForeignKeyConstraint(
            ["to_version"], [f"{S}.model_version.id"], name="fk_model_change_to_version_model_version"
        ),
        sa.CheckConstraint("kind IN ('promotion', 'rollback')", name="ck_model_change_kind"),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("model_change", schema=S)
    op.drop_index("model_version_one_active", table_name="model_version", schema=S)
    op.drop_table("model_version", schema=S)
