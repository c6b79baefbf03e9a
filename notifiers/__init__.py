"""Sending a message: provider protocol, Twilio, HTTP gateway, local outbox, error classes,
retry policy, rate limit, fallback. Knows nothing of the daemon (`dialer`).

A dispatcher composes them, e.g.:

    twilio = TwilioNotifier(account_sid=..., auth_token=..., from_number=...)
    primary = RetryingNotifier(RateLimitedNotifier(twilio, SendWindow(10)), attempts=3)
    backup = RetryingNotifier(RateLimitedNotifier(OutboxNotifier("var/outbox.jsonl"), ...))
    notifier = FallbackNotifier(primary, backup)
    result = await notifier.send(OutboundSms("msg-42", "+8613812345678", "【店名】您的订单已发货"))
    await notifier.close()
"""

from notifiers.base import Encoding, Notifier, OutboundSms, SegmentCount, SendResult, segments
from notifiers.errors import (
    NotifyError,
    PermanentError,
    PermanentReason,
    TransientError,
    parse_retry_after,
)
from notifiers.fallback import FallbackNotifier, should_fall_back
from notifiers.http import HttpGatewayNotifier, classify_gateway_status, render_body
from notifiers.outbox import OutboxNotifier
from notifiers.ratelimit import Limiter, RateLimitedNotifier, SendWindow, TokenBucket
from notifiers.retry import (
    Classifier,
    RetryingNotifier,
    classify_error,
    classify_error_unless_ambiguous,
    send_with_retry,
)
from notifiers.twilio import TwilioNotifier, translate_twilio_error, twilio_signature_valid

__all__ = [
    "Classifier",
    "Encoding",
    "FallbackNotifier",
    "HttpGatewayNotifier",
    "Limiter",
    "Notifier",
    "NotifyError",
    "OutboundSms",
    "OutboxNotifier",
    "PermanentError",
    "PermanentReason",
    "RateLimitedNotifier",
    "RetryingNotifier",
    "SegmentCount",
    "SendResult",
    "SendWindow",
    "TokenBucket",
    "TransientError",
    "TwilioNotifier",
    "classify_error",
    "classify_error_unless_ambiguous",
    "classify_gateway_status",
    "parse_retry_after",
    "render_body",
    "segments",
    "send_with_retry",
    "should_fall_back",
    "translate_twilio_error",
    "twilio_signature_valid",
]
