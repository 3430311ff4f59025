"""Vault tables: key rings and versions, subjects, data keys, records, fields, rewrap jobs.

Revision ID: 0002
Revises: 0001
"""

from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "vault"


def _ts(name: str, nullable: bool = False) -> "sa.Column[datetime]":
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "key_ring",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("min_decryption_version", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_key_ring"),
        sa.UniqueConstraint("name", name="uq_key_ring_name"),
        schema=SCHEMA,
    )
    op.create_table(
        "key_version",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_ring_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("root_key_id", sa.String(64), nullable=False),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_key_version"),
        sa.ForeignKeyConstraint(["key_ring_id"], [f"{SCHEMA}.key_ring.id"], name="fk_key_version_key_ring_id_key_ring"),
        sa.UniqueConstraint("key_ring_id", "version", name="uq_key_version_key_ring_id_version"),
        schema=SCHEMA,
    )
    op.create_table(
        "subject",
        sa.Column("id", sa.Uuid(), nullable=False),
        _ts("created_at"),
        _ts("shredded_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_subject"),
        schema=SCHEMA,
    )
    op.create_table(
        "data_key",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("key_ring_id", sa.Uuid(), nullable=False),
        sa.Column("kek_version", sa.Integer(), nullable=False),
        sa.Column("algorithm", sa.String(16), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        _ts("created_at"),
        _ts("rewrapped_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_data_key"),
        sa.ForeignKeyConstraint(["subject_id"], [f"{SCHEMA}.subject.id"], name="fk_data_key_subject_id_subject"),
        sa.ForeignKeyConstraint(["key_ring_id"], [f"{SCHEMA}.key_ring.id"], name="fk_data_key_key_ring_id_key_ring"),
        sa.UniqueConstraint("subject_id", "key_ring_id", name="uq_data_key_subject_id_key_ring_id"),
        schema=SCHEMA,
    )
    op.create_index("ix_data_key_key_ring_id_kek_version", "data_key", ["key_ring_id", "kek_version"], schema=SCHEMA)
    op.create_table(
        "record",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token", sa.String(48), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("data_key_id", sa.Uuid(), nullable=True),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_record"),
        sa.ForeignKeyConstraint(["subject_id"], [f"{SCHEMA}.subject.id"], name="fk_record_subject_id_subject"),
        sa.ForeignKeyConstraint(
            ["data_key_id"], [f"{SCHEMA}.data_key.id"], name="fk_record_data_key_id_data_key", ondelete="SET NULL"
        ),
        sa.UniqueConstraint("token", name="uq_record_token"),
        schema=SCHEMA,
    )
    op.create_index("ix_record_subject_id", "record", ["subject_id"], schema=SCHEMA)
    op.create_table(
        "record_field",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(40), nullable=False),
        sa.Column("data_class", sa.String(32), nullable=False),
        sa.Column("token", sa.String(48), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("blind_index", sa.LargeBinary(), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name="pk_record_field"),
        sa.ForeignKeyConstraint(
            ["record_id"], [f"{SCHEMA}.record.id"], name="fk_record_field_record_id_record", ondelete="CASCADE"
        ),
        sa.UniqueConstraint("record_id", "name", name="uq_record_field_record_id_name"),
        sa.UniqueConstraint("token", name="uq_record_field_token"),
        schema=SCHEMA,
    )
    op.create_index("ix_record_field_name_blind_index", "record_field", ["name", "blind_index"], schema=SCHEMA)
    op.create_table(
        "rewrap_job",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key_ring_id", sa.Uuid(), nullable=False),
        sa.Column("target_version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("finished_at", nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_rewrap_job"),
        sa.ForeignKeyConstraint(["key_ring_id"], [f"{SCHEMA}.key_ring.id"], name="fk_rewrap_job_key_ring_id_key_ring"),
        schema=SCHEMA,
    )
    op.create_index("ix_rewrap_job_key_ring_id", "rewrap_job", ["key_ring_id"], schema=SCHEMA)
    op.create_index("ix_rewrap_job_state", "rewrap_job", ["state"], schema=SCHEMA)


def downgrade() -> None:
    for table in ("rewrap_job", "record_field", "record", "data_key", "subject", "key_version", "key_ring"):
        op.drop_table(table, schema=SCHEMA)
