"""The initial schema: events, outbound messages, campaigns, contacts, attempts, opt-outs.

Revision ID: 0001
Revises:
Created: 2025-11-26

Written by hand, and frozen: a later change of schema is a new revision, never an edit here.
The values in the CHECK constraints are spelled out rather than imported from the schema, so that
this revision keeps meaning what it meant when later code changes.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OUTCOMES = (
    "'answered', 'busy', 'no_answer', 'congestion', 'unavailable', 'failed', 'abandoned', 'unknown'"
)


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True)


def _ref(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _fk(table: str, column: str, referred: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{referred}.id"], name=op.f(f"fk_{table}_{column}_{referred}")
    )


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _time(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "events",
        _id(),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("payload", _json(), nullable=False),
        sa.Column("response", _json(), nullable=True),
        _time("received_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_events_event_id")),
    )
    op.create_table(
        "outbound_messages",
        _id(),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("stage", sa.String(), nullable=False),
        sa.Column("channel", sa.String(), server_default="sms", nullable=False),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), server_default="1", nullable=False),
        sa.Column("provider", sa.String(), nullable=True),
        sa.Column("provider_message_id", sa.String(), nullable=True),
        sa.Column("status", sa.String(), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        _time("next_attempt_at", nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("error_code", sa.String(), nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        _time("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbound_messages")),
        sa.UniqueConstraint("order_id", "stage", name=op.f("uq_outbound_messages_order_id_stage")),
        sa.UniqueConstraint(
            "provider_message_id", name=op.f("uq_outbound_messages_provider_message_id")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'delivered', 'undelivered', 'failed', 'dead')",
            name=op.f("ck_outbound_messages_status"),
        ),
    )
    op.create_index(
        op.f("ix_outbound_messages_status_next_attempt_at"),
        "outbound_messages",
        ["status", "next_attempt_at"],
    )
    op.create_table(
        "campaigns",
        _id(),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("state", sa.String(), server_default="running", nullable=False),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
        sa.UniqueConstraint("name", name=op.f("uq_campaigns_name")),
        sa.CheckConstraint("state IN ('running', 'paused')", name=op.f("ck_campaigns_state")),
    )
    op.create_table(
        "contacts",
        _id(),
        _ref("campaign_id"),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=True),
        sa.Column("timezone", sa.String(), nullable=True),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("context", _json(), nullable=True),
        sa.Column("state", sa.String(), server_default="pending", nullable=False),
        sa.Column("attempts_count", sa.Integer(), server_default="0", nullable=False),
        _time("next_attempt_at", nullable=True),
        sa.Column("lease_owner", sa.String(), nullable=True),
        _time("lease_expires_at", nullable=True),
        sa.Column("last_outcome", sa.String(), nullable=True),
        sa.Column("disposition", sa.String(), nullable=True),
        _time("created_at", nullable=False),
        _time("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contacts")),
        _fk("contacts", "campaign_id", "campaigns"),
        sa.UniqueConstraint("campaign_id", "phone", name=op.f("uq_contacts_campaign_id_phone")),
        sa.CheckConstraint(
            "state IN ('pending', 'dialling', 'done', 'failed', 'cancelled')",
            name=op.f("ck_contacts_state"),
        ),
        sa.CheckConstraint(f"last_outcome IN ({OUTCOMES})", name=op.f("ck_contacts_last_outcome")),
    )
    op.create_index(
        op.f("ix_contacts_campaign_id_state_next_attempt_at"),
        "contacts",
        ["campaign_id", "state", "next_attempt_at"],
    )
    op.create_table(
        "attempts",
        _id(),
        sa.Column("attempt_id", sa.String(), nullable=False),
        _ref("contact_id"),
        _ref("campaign_id"),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("channel_id", sa.String(), nullable=True),
        _time("started_at", nullable=False),
        _time("answered_at", nullable=True),
        _time("ended_at", nullable=True),
        sa.Column("outcome", sa.String(), nullable=True),
        sa.Column("disposition", sa.String(), nullable=True),
        sa.Column("reason_code", sa.Integer(), nullable=True),
        sa.Column("dial_status", sa.String(), nullable=True),
        sa.Column("hangup_cause", sa.Integer(), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attempts")),
        _fk("attempts", "contact_id", "contacts"),
        _fk("attempts", "campaign_id", "campaigns"),
        sa.UniqueConstraint("attempt_id", name=op.f("uq_attempts_attempt_id")),
        sa.UniqueConstraint("channel_id", name=op.f("uq_attempts_channel_id")),
        sa.CheckConstraint(f"outcome IN ({OUTCOMES})", name=op.f("ck_attempts_outcome")),
    )
    op.create_index(op.f("ix_attempts_contact_id"), "attempts", ["contact_id"])
    op.create_index(op.f("ix_attempts_campaign_id_outcome"), "attempts", ["campaign_id", "outcome"])
    op.create_index(
        op.f("ix_attempts_unsettled"),
        "attempts",
        ["started_at"],
        sqlite_where=sa.text("outcome IS NULL"),
        postgresql_where=sa.text("outcome IS NULL"),
    )
    op.create_table(
        "opt_outs",
        _id(),
        sa.Column("phone", sa.String(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        _time("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_outs")),
        sa.UniqueConstraint("phone", "scope", name=op.f("uq_opt_outs_phone_scope")),
        sa.CheckConstraint("scope IN ('sms', 'call', 'all')", name=op.f("ck_opt_outs_scope")),
    )


def downgrade() -> None:
    op.drop_table("opt_outs")
    op.drop_index(op.f("ix_attempts_unsettled"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_campaign_id_outcome"), table_name="attempts")
    op.drop_index(op.f("ix_attempts_contact_id"), table_name="attempts")
    op.drop_table("attempts")
    op.drop_index(op.f("ix_contacts_campaign_id_state_next_attempt_at"), table_name="contacts")
    op.drop_table("contacts")
    op.drop_table("campaigns")
    op.drop_index(
        op.f("ix_outbound_messages_status_next_attempt_at"), table_name="outbound_messages"
    )
    op.drop_table("outbound_messages")
    op.drop_table("events")
