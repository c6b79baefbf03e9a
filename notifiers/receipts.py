"""What providers push back after a send, as typed values: delivery receipts and replies.

The parsers live beside each provider (`notifiers.aliyun_receipts`, `notifiers.tencent_receipts`)
and are pure functions from a decoded JSON body to these dataclasses: the daemon's HTTP routes
decode the body, call the parser, store the result and answer the provider. A malformed body is
refused with a `ValueError` that says what is wrong (answer it 400; the provider's retries of a
body we cannot read would not help).

Carrier status reports (the CMPP/SGIP/SMGP codes both providers pass through) are shared here:
`CARRIER_TRANSIENT_CODES` are the failures worth another try later (the phone was off or out of
coverage, a gateway was congested); every other failure code is dead for that message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = [
    "CARRIER_TRANSIENT_CODES",
    "DeliveryReceipt",
    "DeliveryStatus",
    "InboundReply",
    "require_list",
    "require_mapping",
    "require_text",
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


# Carrier status report codes worth retrying later, from the China Mobile CMPP gateway status
# list (e.g. https://www.cnblogs.com/da-guang/p/5880631.html and the CMPP code list at
# https://cnblogs.com/yhdkzy/p/4238029.html), which Aliyun and Tencent pass through:
CARRIER_TRANSIENT_CODES: Mapping[str, str] = {
    "EXPIRED": "not delivered in time: phone off or out of coverage for long",
    "MK:0010": "phone off or out of coverage past the SMSC's retention",
    "MK:0023": "phone off",
    "IB:0008": "gateway flow control",
    "DB:9007": "gateway over its traffic limit",
    "MI:0024": "phone off",
    "MI:0042": "phone off",
    "MI:0061": "gateway flow control",
    "MI:0062": "gateway flow control",
    "MI:0076": "phone off",
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
