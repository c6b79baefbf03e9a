"""The store's tables (SQLAlchemy Core metadata), in UTC.

The schema is changed only by the migrations in `dialer/store/migrations` (alembic, run by
`Store.open`); `metadata` must describe the same schema, and a test compares the two on both
backends. Times are stored in UTC and always read back timezone-aware (`UtcDateTime`); a naive
datetime is refused when written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from dialer.messaging.ports import MESSAGE_STATUSES
from dialer.outcomes import CALL_OUTCOMES

__all__ = [
    "CAMPAIGN_STATES",
    "CONTACT_STATES",
    "MESSAGE_STATUSES",
    "OPT_OUT_SCOPES",
    "UtcDateTime",
    "attempts",
    "campaigns",
    "contacts",
    "events",
    "follow_ups",
    "metadata",
    "opt_outs",
    "outbound_messages",
    "runner_slots",
    "seen_callbacks",
    "sessions",
    "templates_json",
    "timeline",
    "workers",
]

CAMPAIGN_STATES = ("running", "paused")
CONTACT_STATES = ("pending", "dialling", "done", "failed", "cancelled")
OPT_OUT_SCOPES = ("sms", "call", "all")


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC; read back aware (UTC) also from SQLite."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError(f"refusing a naive datetime ({value.isoformat()}): give a timezone")
        in_utc = value.astimezone(UTC)
        # SQLite has no time zone type: store the UTC wall time, so text order is time order.
        return in_utc.replace(tzinfo=None) if dialect.name == "sqlite" else in_utc

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def bind_processor(self, dialect: sa.Dialect) -> Callable[[Any], Any] | None:
        """The conversion above (and the driver's own), done once for a value written many
        times in a row: a batch of contacts shares one `now` for three columns of each row."""
        convert = super().bind_processor(dialect)
        if convert is None:
            return None
        last: list[Any] = [_NOTHING, None]

        def process(value: Any) -> Any:
            if value is not last[0]:
                last[0], last[1] = value, convert(value)
            return last[1]

        return process


_NOTHING = object()


def utc_now() -> datetime:
    return datetime.now(UTC)


# SQLite makes only an INTEGER PRIMARY KEY an auto-incrementing rowid.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Json = sa.JSON().with_variant(JSONB(), "postgresql")


def _one_of(column: str, values: tuple[str, ...]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=column)


def _timestamps() -> tuple[sa.Column[datetime], sa.Column[datetime]]:
    return (
        sa.Column("created_at", UtcDateTime(), nullable=False, default=utc_now),
        sa.Column("updated_at", UtcDateTime(), nullable=False, default=utc_now, onupdate=utc_now),
    )


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("event_id", sa.String, nullable=False, unique=True),
    sa.Column("order_id", sa.String, nullable=False),
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("phone", sa.String, nullable=False),
    sa.Column("payload", Json, nullable=False),
    sa.Column("response", Json, nullable=True),
    sa.Column("received_at", UtcDateTime(), nullable=False, default=utc_now),
)

outbound_messages = sa.Table(
    "outbound_messages",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("event_id", sa.String, nullable=False),
    sa.Column("order_id", sa.String, nullable=False),
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("channel", sa.String, nullable=False, default="sms", server_default="sms"),
    sa.Column("phone", sa.String, nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("segments", sa.Integer, nullable=False, default=1, server_default="1"),
    sa.Column("provider", sa.String, nullable=True),
    sa.Column("provider_message_id", sa.String, nullable=True, unique=True),
    sa.Column("status", sa.String, nullable=False, default="queued", server_default="queued"),
    sa.Column("attempts", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("error_code", sa.String, nullable=True),
    *_timestamps(),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("replayed_at", UtcDateTime(), nullable=True),
    sa.Column("lease_owner", sa.String, nullable=True),
    # Provider name -> {"code", "params"}: the approved templates of the template-only
    # providers (Aliyun, Tencent), filled at intake like `body`.
    sa.Column("templates", Json, nullable=True),
    # A send that may have reached a provider without our knowing (a lost answer, a crash
    # mid-send): looked up at the provider before the message is sent again.
    sa.Column("ambiguous_since", UtcDateTime(), nullable=True),
    # Held back by the daily limit per number until then (queued, due then).
    sa.Column("held_until", UtcDateTime(), nullable=True),
    sa.UniqueConstraint("order_id", "stage"),
    _one_of("status", MESSAGE_STATUSES),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "phone", "sent_at"),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("name", sa.String, nullable=False, unique=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("state", sa.String, nullable=False, default="running", server_default="running"),
    *_timestamps(),
    _one_of("state", CAMPAIGN_STATES),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("phone", sa.String, nullable=False),
    sa.Column("name", sa.String, nullable=True),
    sa.Column("timezone", sa.String, nullable=True),
    sa.Column("priority", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("context", Json, nullable=True),
    sa.Column("state", sa.String, nullable=False, default="pending", server_default="pending"),
    sa.Column("attempts_count", sa.Integer, nullable=False, default=0, server_default="0"),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
    sa.Column("lease_owner", sa.String, nullable=True),
    sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
    sa.Column("last_outcome", sa.String, nullable=True),
    sa.Column("disposition", sa.String, nullable=True),
    *_timestamps(),
    sa.UniqueConstraint("campaign_id", "phone"),
    _one_of("state", CONTACT_STATES),
    _one_of("last_outcome", CALL_OUTCOMES),
    sa.Index(None, "campaign_id", "state", "next_attempt_at"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("attempt_id", sa.String, nullable=False, unique=True),
    sa.Column("contact_id", Id, sa.ForeignKey("contacts.id"), nullable=False, index=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("phone", sa.String, nullable=False),
    sa.Column("channel_id", sa.String, nullable=True, unique=True),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("answered_at", UtcDateTime(), nullable=True),
    sa.Column("ended_at", UtcDateTime(), nullable=True),
    sa.Column("outcome", sa.String, nullable=True),
    sa.Column("disposition", sa.String, nullable=True),
    sa.Column("reason_code", sa.Integer, nullable=True),
    sa.Column("dial_status", sa.String, nullable=True),
    sa.Column("hangup_cause", sa.Integer, nullable=True),
    sa.Column("duration_s", sa.Float, nullable=True),
    sa.Column("agent_wait_s", sa.Float, nullable=True),
    _one_of("outcome", CALL_OUTCOMES),
    sa.Index(None, "campaign_id", "outcome"),
)
# The attempts still in flight: what a restart or an AMI reconnect must settle.
sa.Index(
    "ix_attempts_unsettled",
    attempts.c.started_at,
    sqlite_where=attempts.c.outcome.is_(None),
    postgresql_where=attempts.c.outcome.is_(None),
)

opt_outs = sa.Table(
    "opt_outs",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("phone", sa.String, nullable=False),
    sa.Column("scope", sa.String, nullable=False),
    sa.Column("source", sa.String, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False, default=utc_now),
    sa.UniqueConstraint("phone", "scope"),
    _one_of("scope", OPT_OUT_SCOPES),
)

# Several workers on one store (`dialer.workers`): their leases, and who runs each campaign.
workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("host", sa.String, nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("pbx", sa.String, nullable=False),
    sa.Column("roles", sa.String, nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("heartbeat_at", UtcDateTime(), nullable=False),
    sa.Column("lease_expires_at", UtcDateTime(), nullable=False),
    sa.Column("declared_dead_at", UtcDateTime(), nullable=True),
)

runner_slots = sa.Table(
    "runner_slots",
    metadata,
    sa.Column("campaign", sa.String, primary_key=True),
    sa.Column("owner", sa.String, nullable=True),
    sa.Column("pbx", sa.String, nullable=True),
    sa.Column("agent_queue", sa.String, nullable=True),
    sa.Column("claimed_at", UtcDateTime(), nullable=True),
)

# The status page's sessions (`dialer.http.sessions`): the SHA-256 of the cookie's id, never
# the id itself; the fingerprint of the API token it was opened with; when it ends.
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("id_hash", sa.String, nullable=False, unique=True),
    sa.Column("token_fingerprint", sa.String, nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False, default=utc_now),
    sa.Column("expires_at", UtcDateTime(), nullable=False, index=True),
)

# Provider callbacks already acted on (Twilio's MessageSid...), so that a replayed one changes
# nothing; kept for a while (`dialer.messaging.service.CALLBACKS_KEPT`), then forgotten.
seen_callbacks = sa.Table(
    "seen_callbacks",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("provider", sa.String, nullable=False),
    sa.Column("callback_id", sa.String, nullable=False),
    sa.Column("seen_at", UtcDateTime(), nullable=False, index=True),
    sa.UniqueConstraint("provider", "callback_id"),
)

# The timeline of each phone number (`dialer.timeline`): every decision, its time and reason.
# `follow_up` is true while the follow-up (escalations, webhooks) has yet to read the entry.
timeline = sa.Table(
    "timeline",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("phone", sa.String, nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("until", UtcDateTime(), nullable=True),
    sa.Column("campaign", sa.String, nullable=True),
    sa.Column("order_id", sa.String, nullable=True),
    sa.Column("detail", Json, nullable=True),
    sa.Column("follow_up", sa.Boolean, nullable=True),
    sa.Index(None, "phone", "at"),
    sa.Index(None, "at"),
)
sa.Index(
    "ix_timeline_pending_follow_up",
    timeline.c.id,
    sqlite_where=timeline.c.follow_up.is_not(None),
    postgresql_where=timeline.c.follow_up.is_not(None),
)

# What an escalation rule did, once per rule and subject (a contact, an order).
follow_ups = sa.Table(
    "follow_ups",
    metadata,
    sa.Column("id", Id, primary_key=True),
    sa.Column("rule", sa.String, nullable=False),
    sa.Column("subject", sa.String, nullable=False),
    sa.Column("done_at", UtcDateTime(), nullable=False),
    sa.UniqueConstraint("rule", "subject"),
)


def templates_json(templates: Mapping[str, Any]) -> dict[str, Any] | None:
    """How a message's provider templates are stored (`outbound_messages.templates`): the
    variables as [name, value] pairs, since their order counts (Tencent sends them by
    position) and PostgreSQL's JSONB does not keep the order of an object's keys."""
    if not templates:
        return None
    return {
        name: {
            "code": template.code,
            "params": [[key, value] for key, value in template.params.items()],
        }
        for name, template in templates.items()
    }
