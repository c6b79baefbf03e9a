"""The UPDATEs that record a claimed message's outcome (`dialer.store.outbox`): built once,
with bind parameters, and run as one executemany per kind.

`sent` moves a row from `sending` on (never a `dead` one); `retry`, `hold` and `dead` touch only
a row still `sending` and leased to the worker writing (`b_owner`): a worker declared dead
meanwhile, whose message another took over, changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from dialer.messaging.ports import MessageOutcome
from dialer.store.schema import UtcDateTime, outbound_messages

__all__ = ["OUTCOME_STATEMENTS", "PAST_SENDING", "now_param", "outcome_params"]

_m = outbound_messages.c
PAST_SENDING = ("sent", "delivered", "undelivered", "failed")


def now_param(name: str = "now") -> sa.BindParameter[datetime]:
    return sa.bindparam(name, type_=UtcDateTime())


_SENT = (
    outbound_messages.update()
    .where(
        _m.id == sa.bindparam("b_id"),
        # Any status from `sending` on but `dead` (no IN list: executemany takes no expanding
        # parameter).
        sa.or_(*(_m.status == status for status in ("sending", *PAST_SENDING))),
    )
    .values(
        status=sa.case((_m.status == "sending", "sent"), else_=_m.status),
        provider=sa.bindparam("b_provider"),
        provider_message_id=sa.bindparam("b_provider_message_id"),
        sent_at=now_param("b_now"),
        next_attempt_at=None,
        last_error=None,
        error_code=None,
        ambiguous_since=None,
        updated_at=now_param("b_now"),
    )
)
_HOLDER = _m.lease_owner.is_not_distinct_from(sa.bindparam("b_owner", type_=sa.String()))
_RETRY = (
    outbound_messages.update()
    .where(_m.id == sa.bindparam("b_id"), _m.status == "sending", _HOLDER)
    .values(
        status="queued",
        next_attempt_at=now_param("b_at"),
        last_error=sa.bindparam("b_error"),
        error_code=sa.bindparam("b_code"),
        ambiguous_since=sa.func.coalesce(_m.ambiguous_since, now_param("b_ambiguous_at")),
        updated_at=now_param("b_now"),
    )
)
# Held by the daily limit per number: the try is not counted, and its age counts from `b_at`.
_HOLD = (
    outbound_messages.update()
    .where(_m.id == sa.bindparam("b_id"), _m.status == "sending", _HOLDER)
    .values(
        status="queued",
        attempts=_m.attempts - 1,
        next_attempt_at=now_param("b_at"),
        held_until=now_param("b_at"),
        replayed_at=now_param("b_at"),
        last_error=sa.bindparam("b_error"),
        updated_at=now_param("b_now"),
    )
)
_DEAD = (
    outbound_messages.update()
    .where(_m.id == sa.bindparam("b_id"), _m.status == "sending", _HOLDER)
    .values(
        status="dead",
        next_attempt_at=None,
        last_error=sa.bindparam("b_error"),
        error_code=sa.bindparam("b_code"),
        ambiguous_since=None,
        updated_at=now_param("b_now"),
    )
)


def outcome_params(outcome: MessageOutcome, owner: str | None) -> dict[str, Any]:
    if outcome.kind == "sent":
        return {
            "b_id": outcome.message_id,
            "b_provider": outcome.provider,
            "b_provider_message_id": outcome.provider_message_id,
            "b_now": outcome.now,
        }
    params = {
        "b_id": outcome.message_id,
        "b_owner": owner,
        "b_error": outcome.error,
        "b_now": outcome.now,
    }
    if outcome.kind == "hold":
        return {**params, "b_at": outcome.at}
    params["b_code"] = outcome.code
    if outcome.kind == "retry":
        ambiguous_at = outcome.now if outcome.ambiguous else None
        return {**params, "b_at": outcome.at, "b_ambiguous_at": ambiguous_at}
    return params


_STATEMENTS = {"sent": _SENT, "retry": _RETRY, "dead": _DEAD, "hold": _HOLD}


OUTCOME_STATEMENTS = {"sent": _SENT, "retry": _RETRY, "dead": _DEAD, "hold": _HOLD}
