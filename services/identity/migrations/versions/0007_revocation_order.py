"""The revocation feed's commit-ordered cursor (issue 13 item 8).

Every revocation of a session (``revoked_at`` going from null to a time) gets ``revoked_seq`` from one
counter row, bumped by a trigger in the revoking transaction. The bump holds the row's lock until that
transaction ends, so a second revocation waits for the first to commit (or roll back) before it gets
the next number: numbers become visible in the order they were handed out, and a reader that has seen
number N has seen every number below it. The feed's cursor is that number, never a time taken before
the commit (which let a revocation that committed late slip behind the cursor).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "revocation_counter",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocation_counter")),
        schema="identity",
    )
    op.add_column("session", sa.Column("revoked_seq", sa.BigInteger(), nullable=True), schema="identity")
    op.execute(
        """
        WITH ordered AS (
            SELECT id, row_number() OVER (ORDER BY revoked_at, id) AS seq
            FROM identity.session WHERE revoked_at IS NOT NULL
        )
        UPDATE identity.session AS s SET revoked_seq = o.seq FROM ordered AS o WHERE s.id = o.id
        """
    )
    op.execute(
        "INSERT INTO identity.revocation_counter (id, value) "
        "SELECT 1, COALESCE(MAX(revoked_seq), 0) FROM identity.session"
    )
    op.create_index(op.f("ix_session_revoked_seq"), "session", ["revoked_seq"], unique=False, schema="identity")
    op.execute(
        """
        CREATE FUNCTION identity.stamp_revocation() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.revoked_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.revoked_at IS NULL) THEN
                UPDATE identity.revocation_counter SET value = value + 1 WHERE id = 1
                RETURNING value INTO NEW.revoked_seq;
            END IF;
            RETURN NEW;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER session_revocation_seq BEFORE INSERT OR UPDATE OF revoked_at ON identity.session "
        "FOR EACH ROW EXECUTE FUNCTION identity.stamp_revocation()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER session_revocation_seq ON identity.session")
    op.execute("DROP FUNCTION identity.stamp_revocation()")
    op.drop_index(op.f("ix_session_revoked_seq"), table_name="session", schema="identity")
    op.drop_column("session", "revoked_seq", schema="identity")
    op.drop_table("revocation_counter", schema="identity")
