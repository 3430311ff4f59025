"""Passkey assurance: the authenticator's AAGUID and whether it was attested as allow-listed hardware.
Step-ups bound to one payload (``transfer.large``): the grant keeps the payload's hash.

Existing passkeys were registered without attestation: they are not hardware (aal2 from now on).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webauthn_credential", sa.Column("aaguid", sa.String(length=36), nullable=True), schema="identity")
    op.add_column(
        "webauthn_credential",
        sa.Column("hardware", sa.Boolean(), server_default="false", nullable=False),
        schema="identity",
    )
    op.add_column("step_up_grant", sa.Column("payload_hash", sa.String(length=64), nullable=True), schema="identity")


def downgrade() -> None:
    op.drop_column("step_up_grant", "payload_hash", schema="identity")
    op.drop_column("webauthn_credential", "hardware", schema="identity")
    op.drop_column("webauthn_credential", "aaguid", schema="identity")
