"""Aliyun SMS pushes, read: delivery reports (SmsReport) and replies (SmsUp), HTTP batch push.

Both are POSTed as a JSON array (a push may carry several items), UTF-8, times in Beijing time
("2017-01-01 00:00:00"). The receiver answers HTTP 200 with `{"code": 0, "msg": "接收成功"}`;
anything else, or no answer, is pushed again after 1, 5 and 10 minutes, so a receiver must be
idempotent (Aliyun says receipts may come more than once).

SmsReport item (https://help.aliyun.com/document_detail/101867.html): phone_number, send_time,
report_time, success (bool), err_code ("DELIVERED" when success), err_msg, sms_size, biz_id (the
BizId SendSms answered), out_id (our message id, the OutId we sent).

SmsUp item (https://help.aliyun.com/knowledge_detail/60127.html): phone_number, send_time,
content, sign_name, dest_code, sequence_id (a number; with the phone it identifies the reply).
"""

from __future__ import annotations

from collections.abc import Mapping

from notifiers.receipts import (
    CARRIER_DELIVERY_FAILURES,
    DeliveryReceipt,
    DeliveryStatus,
    InboundReply,
    beijing_time,
    optional_text,
    require_list,
    require_mapping,
    require_text,
    to_e164,
)

__all__ = [
    "ALIYUN_DELIVERY_FAILURES",
    "PUSH_ACCEPTED",
    "delivery_failure_is_transient",
    "parse_aliyun_replies",
    "parse_aliyun_reports",
]

PUSH_ACCEPTED: Mapping[str, object] = {"code": 0, "msg": "接收成功"}  # the answer Aliyun expects

# Aliyun delivery-report codes -> worth another try later (True) or dead (False): the carriers'
# codes it passes through, and its own platform codes, which start with "isv."/"isp."
# (https://help.aliyun.com/document_detail/101347.htm, "回执错误码").
ALIYUN_DELIVERY_FAILURES: Mapping[str, bool] = {
    **CARRIER_DELIVERY_FAILURES,
    "isp.SYSTEM_ERROR": True,  # Aliyun's side failed before the carrier: try again later
    "isv.MOBILE_NUMBER_ILLEGAL": False,  # the number
    "isv.BLACK_KEY_CONTROL_LIMIT": False,  # blacklisted words
    "isv.SMS_CONTENT_ILLEGAL": False,  # forbidden content
}


def delivery_failure_is_transient(code: str) -> bool:
    """Whether an Aliyun report's err_code is worth sending the message again later."""
    return ALIYUN_DELIVERY_FAILURES.get(code.strip(), False)


def parse_aliyun_reports(body: object, *, provider: str = "aliyun") -> list[DeliveryReceipt]:
    """The receipts in a SmsReport push (the decoded JSON body). ValueError when malformed."""
    receipts = []
    for index, raw in enumerate(require_list(body, "SmsReport push")):
        what = f"SmsReport item {index}"
        item = require_mapping(raw, what)
        success = item.get("success")
        if not isinstance(success, bool):
            raise ValueError(f"{what}: 'success' must be true or false")
        code = require_text(item, "err_code", what, empty=True).strip() or None
        status: DeliveryStatus
        if success:
            status = "delivered"
        elif code is not None and code.startswith(("isv.", "isp.")):
            status = "failed"  # refused by Aliyun itself, never reached a carrier
        else:
            status = "undelivered"
        out_id = require_text(item, "out_id", what, empty=True).strip() if "out_id" in item else ""
        receipts.append(
            DeliveryReceipt(
                provider=provider,
                provider_message_id=require_text(item, "biz_id", what),
                message_id=out_id or None,
                phone=to_e164(require_text(item, "phone_number", what), what),
                status=status,
                error_code=None if success else code,
                error_message=None if success else optional_text(item, "err_msg"),
                at=beijing_time(item, "report_time", what),
            )
        )
    return receipts


def parse_aliyun_replies(body: object, *, provider: str = "aliyun") -> list[InboundReply]:
    """The replies in a SmsUp push (the decoded JSON body). ValueError when malformed."""
    replies = []
    for index, raw in enumerate(require_list(body, "SmsUp push")):
        what = f"SmsUp item {index}"
        item = require_mapping(raw, what)
        sequence = item.get("sequence_id")
        if isinstance(sequence, bool) or not isinstance(sequence, int | str) or not str(sequence):
            raise ValueError(f"{what}: 'sequence_id' is missing")
        phone = to_e164(require_text(item, "phone_number", what), what)
        replies.append(
            InboundReply(
                provider=provider,
                provider_id=f"{phone}/{sequence}",
                phone=phone,
                text=require_text(item, "content", what, empty=True),
                at=beijing_time(item, "send_time", what),
                sign_name=optional_text(item, "sign_name"),
            )
        )
    return replies
