"""What providers push back after a send, as typed values: delivery receipts and replies.

The parsers live beside each provider (`notifiers.aliyun_receipts`, `notifiers.tencent_receipts`)
and are pure functions from a decoded JSON body to these dataclasses: the daemon's HTTP routes
decode the body, call the parser, store the result and answer the provider. A malformed body is
refused with a `ValueError` that says what is wrong (answer it 400; the provider's retries of a
body we cannot read would not help).

Carrier status reports (the CMPP/SGIP/SMGP codes both providers pass through) are shared here:
`CARRIER_DELIVERY_FAILURES` tells the failures worth another try later (the phone was off or out
of coverage, a gateway was congested) from the dead ones; a code in no table is dead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from notifiers.mainland import BEIJING

__all__ = [
    "CARRIER_DELIVERY_FAILURES",
    "DeliveryReceipt",
    "DeliveryStatus",
    "InboundReply",
    "beijing_time",
    "optional_text",
    "require_list",
    "require_mapping",
    "require_text",
    "to_e164",
]

DeliveryStatus = Literal["delivered", "undelivered", "failed"]


@dataclass(frozen=True)
class DeliveryReceipt:
    """A provider's final word on one message.

    `message_id` is our id when the provider echoes it (Aliyun's out_id, Tencent's ext when set),
    else None; `provider_message_id` is the provider's id from the send (Aliyun's BizId,
    Tencent's SerialNo); `phone` is E.164; `status`: "delivered", "undelivered" (the network
    gave up: see `error_code`), or "failed" (the provider never handed it over);
    `error_code` the provider's or the carrier's code ("DELIVERED", "MK:0001", "30003"...)."""

    provider: str
    provider_message_id: str
    message_id: str | None
    phone: str
    status: DeliveryStatus
    error_code: str | None
    error_message: str | None
    at: datetime | None


@dataclass(frozen=True)
class InboundReply:
    """A text a recipient sent back. `provider_id` is stable across the provider's retried
    pushes of the same reply: de-duplicate on it."""

    provider: str
    provider_id: str
    phone: str
    text: str
    at: datetime
    sign_name: str | None = None


# Carrier status report codes (CMPP/SGIP/SMGP, passed through by Aliyun and Tencent) -> whether
# the failure is worth another try later (True) or dead for this message (False). From the China
# Mobile gateway status lists: https://www.cnblogs.com/da-guang/p/5880631.html (SMSC, DSMP and
# ISMG codes) and https://cnblogs.com/yhdkzy/p/4238029.html (MK:/MN: codes). A code in no table
# is dead: retrying what nobody understood would only cost money.
CARRIER_DELIVERY_FAILURES: Mapping[str, bool] = {
    "EXPIRED": True,  # not delivered in time: phone off or out of coverage for long
    "MK:0010": True,  # phone off or out of coverage past the SMSC's retention
    "MK:0023": True,  # phone off
    "IB:0008": True,  # gateway flow control
    "DB:9007": True,  # gateway over its traffic limit
    "UNDELIV": False,  # the subscriber's state (suspended...) forbids delivery
    "REJECTD": False,  # rejected by the gateway
    "MK:0001": False,  # no such subscriber
    "MK:0005": False,  # number suspended
    "MK:0013": False,  # number suspended
    "MK:0115": False,  # blocked as spam
    "DB:0101": False,  # invalid or empty number
    "DB:0102": False,  # subscriber suspended
    "DBBLACK": False,  # gateway blacklist
    "MBBLACK": False,  # local blacklist
}


def require_mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def require_list(value: object, what: str) -> list[object]:
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a JSON array, not {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} is an empty array")
    return value


def require_text(item: Mapping[str, object], key: str, what: str, *, empty: bool = False) -> str:
    value = item.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"{what}: {key!r} is missing or not a string")
    if not value.strip() and not empty:
        raise ValueError(f"{what}: {key!r} is empty")
    return value


def to_e164(number: str, what: str) -> str:
    """A number as a provider pushes it, as E.164: "+8613811112222", "8613811112222",
    "13811112222" (mainland) and "0085261234567" (international) are accepted."""
    digits = number.strip()
    if digits.startswith("+"):
        e164 = digits
    elif digits.startswith("00"):
        e164 = "+" + digits[2:]
    elif len(digits) == 11 and digits.startswith("1"):
        e164 = "+86" + digits
    elif len(digits) == 13 and digits.startswith("861"):
        e164 = "+" + digits
    else:
        raise ValueError(f"{what}: not a phone number a provider sends: {number[:4]!r}…")
    if not (e164[1:].isdigit() and 8 <= len(e164) <= 16 and e164[1] != "0"):
        raise ValueError(f"{what}: not a phone number: {number[:4]!r}…")
    return e164


def beijing_time(item: Mapping[str, object], key: str, what: str) -> datetime:
    """A provider's "YYYY-MM-DD HH:MM:SS" in Beijing time, as an aware datetime."""
    text = require_text(item, key, what)
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)
    except ValueError:
        raise ValueError(f"{what}: {key!r} is not 'YYYY-MM-DD HH:MM:SS': {text!r}") from None


def optional_text(item: Mapping[str, object], key: str) -> str | None:
    value = item.get(key)
    return value if isinstance(value, str) and value else None
