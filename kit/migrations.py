"""Alembic plumbing shared by every service: one history per service schema.

A service's ``migrations/env.py`` is two lines (``run_env(Base.metadata)``);
its version table lives in its own schema. ``create_kit_tables`` is the frozen
DDL of the kit's tables (audit chain, outbox, inbox) that each service's first
revision applies.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, pool, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from kit.audit import append_only_trigger_sql, audit_head_trigger_sql

VERSION_TABLE = "alembic_version"


def alembic_config(migrations_dir: Path, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    return config


def head_revisions(migrations_dir: Path) -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return set(ScriptDirectory.from_config(config).get_heads())


def known_revisions(migrations_dir: Path) -> set[str]:
    """Every revision of this code's history (a database revision outside it is a newer release's)."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


def upgrade(migrations_dir: Path, database_url: str, schema: str, revision: str = "head") -> None:
    """Apply migrations (blocking: run it outside an event loop or in a thread)."""
    command.upgrade(alembic_config(migrations_dir, database_url, schema), revision)


async def current_revisions(connection: AsyncConnection, schema: str) -> set[str]:
    def _read(sync_connection: Connection) -> set[str]:
        ctx = MigrationContext.configure(
            sync_connection, opts={"version_table_schema": schema, "version_table": VERSION_TABLE}
        )
        return set(ctx.get_current_heads())

    return await connection.run_sync(_read)


def run_env(target_metadata: MetaData) -> None:
    """Body of every service's ``env.py`` (online mode, async engine)."""
    config = context.config
    schema = config.attributes["schema"]
    url = config.attributes["database_url"]

    def do_run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table_schema=schema,
            include_schemas=True,
            include_name=lambda name, type_, _parent: type_ != "schema" or name == schema,
            compare_type=True,
            transaction_per_migration=False,
        )
        with context.begin_transaction():
            # Serialise concurrent migrators of the same schema (several pods starting).
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext(:s))"), {"s": f"migrate:{schema}"})
            context.run_migrations()

    async def run_async() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        async with engine.connect() as connection:
            await connection.run_sync(do_run)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run_async())


def create_kit_tables(schema: str) -> None:
    """Frozen DDL (revision 1 of every service) for the kit's audit, outbox and inbox tables."""
    op.create_table(
        "audit_entry",
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("actor_kind", sa.String(32), nullable=False),
        sa.Column("action", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("detail", postgresql.JSONB(), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entry"),
        sa.UniqueConstraint("id", name="uq_audit_entry_id"),
        schema=schema,
    )
    op.create_index("ix_audit_entry_action", "audit_entry", ["action"], schema=schema)
    op.create_index("ix_audit_entry_target", "audit_entry", ["target"], schema=schema)
    op.create_table(
        "audit_checkpoint",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("signature", sa.LargeBinary(64), nullable=False),
        sa.Column("key_id", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_checkpoint"),
        schema=schema,
    )
    for statement in append_only_trigger_sql(schema):
        op.execute(statement)
    op.create_table(
        "outbox_message",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=True),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox_message"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_message_idempotency_key"),
        schema=schema,
    )
    op.create_index("ix_outbox_message_status", "outbox_message", ["status"], schema=schema)
    op.create_table(
        "inbox_message",
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("idempotency_key", name="pk_inbox_message"),
        schema=schema,
    )


def create_audit_head(schema: str) -> None:
    """Frozen DDL (one revision in every service): the audit chain's head row, seeded from the tail.

    An empty chain gets no row: the first append creates it.
    """
    op.create_table(
        "audit_head",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("prev_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("entry_hash", sa.LargeBinary(32), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
        schema=schema,
    )
    op.execute(
        f'INSERT INTO "{schema}".audit_head (id, seq, prev_hash, entry_hash) '  # noqa: S608 (a schema constant)
        f'SELECT 1, seq, prev_hash, entry_hash FROM "{schema}".audit_entry ORDER BY seq DESC LIMIT 1'
    )
    for statement in audit_head_trigger_sql(schema):
        op.execute(statement)


def drop_audit_head(schema: str) -> None:
    op.drop_table("audit_head", schema=schema)
