"""The timeline of each phone number, and what the escalation rules did.

Revision ID: 0006_timeline_webhooks
Revises: 0005_sms_mainland
Created: 2026-12-06

- `timeline`: every decision about a number (`dialer.timeline`), by number and time; the
  entries the follow-up has yet to read (`follow_up` true) have their own partial index;
- `follow_ups`: one row per escalation rule and subject it acted on (once each).

Webhooks to the order system are rows of `outbound_messages` with `channel = 'webhook'`: no
schema change. Frozen like 0001: the values are spelled out here.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_timeline_webhooks"
down_revision: str | None = "0005_sms_mainland"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "timeline",
        sa.Column("id", Id, nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("campaign", sa.String(), nullable=True),
        sa.Column("order_id", sa.String(), nullable=True),
        sa.Column("detail", Json, nullable=True),
        sa.Column("follow_up", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timeline")),
    )
    op.create_index(op.f("ix_timeline_phone_at"), "timeline", ["phone", "at"])
    op.create_index(op.f("ix_timeline_at"), "timeline", ["at"])
    op.create_index(
        "ix_timeline_pending_follow_up",
        "timeline",
        ["id"],
        sqlite_where=sa.text("follow_up IS NOT NULL"),
        postgresql_where=sa.text("follow_up IS NOT NULL"),
    )
    op.create_table(
        "follow_ups",
        sa.Column("id", Id, nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("subject", sa.String(), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
        sa.UniqueConstraint("rule", "subject", name=op.f("uq_follow_ups_rule_subject")),
    )


def downgrade() -> None:
    op.drop_table("follow_ups")
    op.drop_index("ix_timeline_pending_follow_up", table_name="timeline")
    op.drop_index(op.f("ix_timeline_at"), table_name="timeline")
    op.drop_index(op.f("ix_timeline_phone_at"), table_name="timeline")
    op.drop_table("timeline")
