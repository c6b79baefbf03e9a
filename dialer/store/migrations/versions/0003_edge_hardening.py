"""Edge hardening: server-side sessions of the status page, and the provider callbacks seen.

Revision ID: 0003
Revises: 0002
Created: 2026-12-06

- `sessions`: one row per status page login: the SHA-256 of the cookie's random id (unique),
  the fingerprint of the API token it was opened with, when it was opened and when it ends;
- `seen_callbacks`: a provider's callback id (Twilio's MessageSid, with the status for
  delivery reports) once acted on, unique per provider, so that a replay changes nothing.

Frozen like 0001: the columns are spelled out here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def upgrade() -> None:
    op.create_table(
        "sessions",
        _id(),
        sa.Column("id_hash", sa.String(), nullable=False),
        sa.Column("token_fingerprint", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sessions")),
        sa.UniqueConstraint("id_hash", name=op.f("uq_sessions_id_hash")),
    )
    op.create_index(op.f("ix_sessions_expires_at"), "sessions", ["expires_at"])
    op.create_table(
        "seen_callbacks",
        _id(),
        sa.Column("provider", sa.String(), nullable=False),
        sa.Column("callback_id", sa.String(), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_seen_callbacks")),
        sa.UniqueConstraint(
            "provider", "callback_id", name=op.f("uq_seen_callbacks_provider_callback_id")
        ),
    )
    op.create_index(op.f("ix_seen_callbacks_seen_at"), "seen_callbacks", ["seen_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_seen_callbacks_seen_at"), table_name="seen_callbacks")
    op.drop_table("seen_callbacks")
    op.drop_index(op.f("ix_sessions_expires_at"), table_name="sessions")
    op.drop_table("sessions")
