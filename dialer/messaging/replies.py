"""What a customer's reply and a provider's delivery report do.

- A reply of STOP, TD, 退订, UNSUBSCRIBE... (any case, trimmed) opts the number out of SMS and
  calls; START opts it back in; anything else changes nothing.
- A delivery report moves a message forward only (`DELIVERY_STATUS_RANK`): a late `sent`
  never undoes `delivered`. One that says `undelivered` or `failed` is acted on
  (`after_delivery_failure`): sent again later when its error code says "try later" (the
  provider's own table, `dialer.messaging.providers.PROVIDERS`) and the message is not too old,
  else the message is dead with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from dialer.messaging.ports import DELIVERY_STATUS_RANK, DeliveryReport

__all__ = [
    "FAILED_DELIVERY",
    "OPT_IN_WORDS",
    "OPT_OUT_WORDS",
    "DeliveryFailureStep",
    "after_delivery_failure",
    "is_delivery_status",
    "reply_action",
]

FAILED_DELIVERY = frozenset({"undelivered", "failed"})

OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "TD", "T", "退订"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})

ReplyAction = Literal["opt_out", "opt_in"]


def reply_action(text: str) -> ReplyAction | None:
    """What a reply asks for: `opt_out`, `opt_in`, or None (an ordinary reply)."""
    word = text.strip().upper()
    if word in OPT_OUT_WORDS:
        return "opt_out"
    if word in OPT_IN_WORDS:
        return "opt_in"
    return None


def is_delivery_status(status: str) -> bool:
    """A status a delivery report may carry (queued ... delivered, undelivered, failed)."""
    return status in DELIVERY_STATUS_RANK


@dataclass(frozen=True)
class DeliveryFailureStep:
    """Send it again at `retry_at`, or (None) it is dead; `error` says why (reason first)."""

    retry_at: datetime | None
    error: str


def after_delivery_failure(
    report: DeliveryReport,
    *,
    status: str,
    code: str | None,
    transient: bool,
    delay_s: float,
    max_age_s: float,
    now: datetime,
) -> DeliveryFailureStep:
    """What an `undelivered` / `failed` report does: `transient` (the provider's table says the
    code may pass) -> again after `delay_s`, unless that is past `max_age_s`; else dead."""
    said = f"{status}{f' (code {code})' if code else ''}"
    if not transient:
        return DeliveryFailureStep(None, f"undelivered: the provider reported {said}")
    retry_at = now + timedelta(seconds=delay_s)
    if (retry_at - report.age_from).total_seconds() > max_age_s:
        return DeliveryFailureStep(None, f"expired: still {said} past max_age_s")
    return DeliveryFailureStep(retry_at, f"redelivery: the provider reported {said}")
