"""Tencent Cloud SMS callbacks, read: delivery status (短信下发状态通知) and replies (短信回复).

Status callback (https://cloud.tencent.com/document/api/382/5807, and
https://www.tencentcloud.com/document/product/382/43547): a JSON array (one callback may carry
several results) of {user_receive_time "2015-10-17 08:03:04" (Beijing), nationcode "86",
mobile, report_status "SUCCESS" | "FAIL", errmsg (the status code: "DELIVRD" on success),
description, sid (the SerialNo SendSms answered), ext (optional: the context we attached)}.

Reply callback (https://cloud.tencent.com/document/api/382/5809): one JSON object {extend,
mobile, nationcode, sign, text, time (UNIX seconds)}.

The receiver answers `{"result": 0, "errmsg": "OK"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from notifiers.receipts import (
    CARRIER_DELIVERY_FAILURES,
    DeliveryReceipt,
    InboundReply,
    beijing_time,
    optional_text,
    require_list,
    require_mapping,
    require_text,
    to_e164,
)

__all__ = [
    "CALLBACK_ACCEPTED",
    "TENCENT_DELIVERY_FAILURES",
    "delivery_failure_is_transient",
    "parse_tencent_reply",
    "parse_tencent_statuses",
]

CALLBACK_ACCEPTED: Mapping[str, object] = {"result": 0, "errmsg": "OK"}

# Tencent status-callback errmsg codes -> worth another try later (True) or dead (False): the
# carriers' codes it passes through, and its own receipt codes
# (https://cloud.tencent.com/document/product/382/3771, "状态回执错误码").
TENCENT_DELIVERY_FAILURES: Mapping[str, bool] = {
    **CARRIER_DELIVERY_FAILURES,
    "002": True,  # phone off, unreachable or out of coverage (三网)
    "-106": False,  # blocked by the carrier's keyword filter (三网)
}


def delivery_failure_is_transient(code: str) -> bool:
    """Whether a Tencent status callback's errmsg is worth sending the message again later."""
    return TENCENT_DELIVERY_FAILURES.get(code.strip(), False)


def parse_tencent_statuses(body: object, *, provider: str = "tencent") -> list[DeliveryReceipt]:
    """The receipts in a status callback (the decoded JSON body). ValueError when malformed."""
    receipts = []
    for index, raw in enumerate(require_list(body, "status callback")):
        what = f"status callback item {index}"
        item = require_mapping(raw, what)
        report = require_text(item, "report_status", what)
        if report not in ("SUCCESS", "FAIL"):
            raise ValueError(f"{what}: 'report_status' must be SUCCESS or FAIL, not {report!r}")
        code = require_text(item, "errmsg", what, empty=True).strip() or None
        delivered = report == "SUCCESS"
        ext = item.get("ext")
        receipts.append(
            DeliveryReceipt(
                provider=provider,
                provider_message_id=require_text(item, "sid", what),
                message_id=ext if isinstance(ext, str) and ext else None,
                phone=_phone(item, what),
                status="delivered" if delivered else "undelivered",
                error_code=None if delivered else code,
                error_message=None if delivered else optional_text(item, "description"),
                at=beijing_time(item, "user_receive_time", what),
            )
        )
    return receipts


def parse_tencent_reply(body: object, *, provider: str = "tencent") -> InboundReply:
    """The reply in a reply callback (the decoded JSON body). ValueError when malformed."""
    item = require_mapping(body, "reply callback")
    what = "reply callback"
    moment = item.get("time")
    if isinstance(moment, bool) or not isinstance(moment, int):
        raise ValueError(f"{what}: 'time' must be a UNIX time in seconds")
    phone = _phone(item, what)
    return InboundReply(
        provider=provider,
        provider_id=f"{phone}/{moment}/{require_text(item, 'text', what, empty=True)}",
        phone=phone,
        text=require_text(item, "text", what, empty=True),
        at=datetime.fromtimestamp(moment, UTC),
        sign_name=optional_text(item, "sign"),
    )


def _phone(item: Mapping[str, object], what: str) -> str:
    nation = require_text(item, "nationcode", what).strip().lstrip("+")
    mobile = require_text(item, "mobile", what).strip()
    if not nation.isdigit() or not mobile.isdigit():
        raise ValueError(f"{what}: 'nationcode' and 'mobile' must be digits")
    return to_e164(f"+{nation}{mobile}", what)
