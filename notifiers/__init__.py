"""Sending a message: provider protocol, Twilio, Aliyun SMS, Tencent Cloud SMS, HTTP gateway,
local outbox, error classes, retry policy, rate limit, fallback, and the parsers of the providers'
delivery receipts and replies. Knows nothing of the daemon (`dialer`).

A dispatcher composes them, e.g.:

    twilio = TwilioNotifier(account_sid=..., auth_token=..., from_number=...)
    primary = RetryingNotifier(RateLimitedNotifier(twilio, SendWindow(10)), attempts=3)
    backup = RetryingNotifier(RateLimitedNotifier(OutboxNotifier("var/outbox.jsonl"), ...))
    notifier = FallbackNotifier(primary, backup)
    result = await notifier.send(OutboundSms("msg-42", "+8613812345678", "【店名】您的订单已发货"))
    await notifier.close()

The mainland China providers send approved templates only:

    aliyun = AliyunSmsNotifier(access_key_id=..., access_key_secret=..., sign_name="优品购")
    sms = OutboundSms("msg-42", "+8613812345678", "【优品购】您的订单A123已发货",
                      template=ProviderTemplate("SMS_123456789", {"order": "A123"}))
    result = await aliyun.send(sms)
"""

import importlib
from typing import TYPE_CHECKING

from notifiers.aliyun_receipts import (
    ALIYUN_DELIVERY_FAILURES,
    parse_aliyun_replies,
    parse_aliyun_reports,
)
from notifiers.aliyun_receipts import (
    delivery_failure_is_transient as aliyun_delivery_failure_is_transient,
)
from notifiers.backoff import AccountBackoffNotifier
from notifiers.base import (
    Encoding,
    Notifier,
    OutboundSms,
    ProviderTemplate,
    SegmentCount,
    SendResult,
    segments,
)
from notifiers.errors import (
    NotifyError,
    PermanentError,
    PermanentReason,
    TransientError,
    TransientScope,
    parse_retry_after,
)
from notifiers.fallback import FallbackNotifier, should_fall_back
from notifiers.http import HttpGatewayNotifier, classify_gateway_status, render_body
from notifiers.outbox import OutboxNotifier
from notifiers.ratelimit import Limiter, RateLimitedNotifier, SendWindow, TokenBucket
from notifiers.receipts import DeliveryReceipt, DeliveryStatus, InboundReply
from notifiers.retry import (
    Classifier,
    RetryingNotifier,
    classify_error,
    classify_error_unless_ambiguous,
    send_with_retry,
)
from notifiers.tencent_receipts import (
    TENCENT_DELIVERY_FAILURES,
    parse_tencent_reply,
    parse_tencent_statuses,
)
from notifiers.tencent_receipts import (
    delivery_failure_is_transient as tencent_delivery_failure_is_transient,
)
from notifiers.twilio import (
    TWILIO_DELIVERY_FAILURES,
    TwilioNotifier,
    translate_twilio_error,
    twilio_signature_valid,
)
from notifiers.twilio import (
    delivery_failure_is_transient as twilio_delivery_failure_is_transient,
)

# The Aliyun and Tencent SDKs take half a second to import: their notifiers load on first use.
_LAZY: dict[str, str] = {
    "ALIYUN_ERRORS": "notifiers.aliyun",
    "AliyunSmsNotifier": "notifiers.aliyun",
    "aliyun_number": "notifiers.aliyun",
    "classify_aliyun_code": "notifiers.aliyun",
    "translate_aliyun_error": "notifiers.aliyun",
    "TENCENT_ERRORS": "notifiers.tencent",
    "TencentSmsNotifier": "notifiers.tencent",
    "classify_tencent_code": "notifiers.tencent",
    "tencent_number": "notifiers.tencent",
    "translate_tencent_error": "notifiers.tencent",
}

if TYPE_CHECKING:
    from notifiers.aliyun import (
        ALIYUN_ERRORS,
        AliyunSmsNotifier,
        aliyun_number,
        classify_aliyun_code,
        translate_aliyun_error,
    )
    from notifiers.tencent import (
        TENCENT_ERRORS,
        TencentSmsNotifier,
        classify_tencent_code,
        tencent_number,
        translate_tencent_error,
    )


def __getattr__(name: str) -> object:
    """The Aliyun and Tencent names, imported when first asked for."""
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'notifiers' has no attribute {name!r}")


__all__ = [
    "ALIYUN_DELIVERY_FAILURES",
    "ALIYUN_ERRORS",
    "TENCENT_DELIVERY_FAILURES",
    "TENCENT_ERRORS",
    "TWILIO_DELIVERY_FAILURES",
    "AccountBackoffNotifier",
    "AliyunSmsNotifier",
    "Classifier",
    "DeliveryReceipt",
    "DeliveryStatus",
    "Encoding",
    "FallbackNotifier",
    "HttpGatewayNotifier",
    "InboundReply",
    "Limiter",
    "Notifier",
    "NotifyError",
    "OutboundSms",
    "OutboxNotifier",
    "PermanentError",
    "PermanentReason",
    "ProviderTemplate",
    "RateLimitedNotifier",
    "RetryingNotifier",
    "SegmentCount",
    "SendResult",
    "SendWindow",
    "TencentSmsNotifier",
    "TokenBucket",
    "TransientError",
    "TransientScope",
    "TwilioNotifier",
    "aliyun_delivery_failure_is_transient",
    "aliyun_number",
    "classify_aliyun_code",
    "classify_error",
    "classify_error_unless_ambiguous",
    "classify_gateway_status",
    "classify_tencent_code",
    "parse_aliyun_replies",
    "parse_aliyun_reports",
    "parse_retry_after",
    "parse_tencent_reply",
    "parse_tencent_statuses",
    "render_body",
    "segments",
    "send_with_retry",
    "should_fall_back",
    "tencent_delivery_failure_is_transient",
    "tencent_number",
    "translate_aliyun_error",
    "translate_tencent_error",
    "translate_twilio_error",
    "twilio_delivery_failure_is_transient",
    "twilio_signature_valid",
]
