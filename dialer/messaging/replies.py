"""What a customer's reply and a provider's delivery report do.

- A reply of STOP, TD, 退订, UNSUBSCRIBE... (any case, trimmed) opts the number out of SMS and
  calls; START opts it back in; anything else changes nothing.
- A delivery report moves a message forward only (`DELIVERY_STATUS_RANK`): a late `sent`
  never undoes `delivered`.
"""

from __future__ import annotations

from typing import Literal

from dialer.messaging.ports import DELIVERY_STATUS_RANK

__all__ = ["OPT_IN_WORDS", "OPT_OUT_WORDS", "is_delivery_status", "reply_action"]

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
