"""client assertions: spent private_key_jwt `jti`s (RFC 7523 §3), kept until they expire

Revision ID: 0008
Revises: 0004

Written in parallel with 0005-0007 (identity providers, mail, MFA), each revising 0004; the lead
re-chains `down_revision` at merge so the history stays linear. This migration depends on nothing
they add.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_client_assertions",
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("jti_hash", name=op.f("pk_oauth_client_assertions")),
    )
    with op.batch_alter_table("oauth_client_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_client_assertions_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oauth_client_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_client_assertions_expires_at"))
    op.drop_table("oauth_client_assertions")
