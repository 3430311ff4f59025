"""Personal data moves to the vault: customer_profile keeps a vault record id, no encrypted values.

Name, national ID, phone and email of customers are now a vault record; the
AES-GCM columns go. Staff work emails get their own table. Notifications name
where the recipient is (vault record and field) instead of carrying it.

Pre-production: there is no data to carry over, so the dropped columns are not
copied into the vault (a deployment with customers would first store every
profile in the vault and fill ``vault_record_id``). The downgrade restores the
columns empty.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_PII_COLUMNS = ("name_enc", "national_id_enc", "phone_enc", "email_enc")


def upgrade() -> None:
    op.add_column("customer_profile", sa.Column("vault_record_id", sa.Uuid(), nullable=True), schema="identity")
    for column in _PII_COLUMNS:
        op.drop_column("customer_profile", column, schema="identity")
    op.create_table(
        "staff_contact",
        sa.Column("account_id", sa.Uuid(), nullable=False),
        sa.Column("email_enc", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["identity.account.id"],
            name=op.f("fk_staff_contact_account_id_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_staff_contact")),
        schema="identity",
    )
    op.add_column("notification", sa.Column("vault_record_id", sa.Uuid(), nullable=True), schema="identity")
    op.add_column("notification", sa.Column("recipient_field", sa.String(length=16), nullable=True), schema="identity")
    op.alter_column("notification", "recipient_enc", existing_type=sa.LargeBinary(), nullable=True, schema="identity")


def downgrade() -> None:
    op.execute("DELETE FROM identity.notification WHERE recipient_enc IS NULL")
    op.alter_column("notification", "recipient_enc", existing_type=sa.LargeBinary(), nullable=False, schema="identity")
    op.drop_column("notification", "recipient_field", schema="identity")
    op.drop_column("notification", "vault_record_id", schema="identity")
    op.drop_table("staff_contact", schema="identity")
    for column in _PII_COLUMNS:
        op.add_column("customer_profile", sa.Column(column, sa.LargeBinary(), nullable=True), schema="identity")
    op.drop_column("customer_profile", "vault_record_id", schema="identity")
