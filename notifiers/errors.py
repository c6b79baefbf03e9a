"""What can go wrong when a message is handed to a provider, as one small tree.

```
NotifyError                      every failure of Notifier.send()
├── TransientError               may pass: retry later (retry_after_s: not before that)
│                                ambiguous=True: the provider may have sent it anyway
│     scope="account"            (the default) the provider or our account is unwell or
│                                throttled as a whole: back off every message of this provider
│     scope="message"            only this message must wait (per-number flow control: the same
│                                number got too many messages in 30 s / 1 h / a day): retry it
│                                after retry_after_s, and do not slow any other message; never
│                                hand it to a fallback provider (the limit protects the person)
└── PermanentError               retrying the same message through the same provider is pointless
      reason="provider"          about our account or the provider (auth, config, sender):
                                 another provider may be tried
      reason="number"            about the recipient (invalid, not mobile, not routable):
                                 no provider will do better; never try another one
      reason="opted_out"         the recipient opted out (Twilio 21610): mark the number, never
                                 send again; a number reason too
```

Each provider translates its own library's exceptions into this tree in one place
(`notifiers.twilio.translate_twilio_error`, `notifiers.http.classify_gateway_status`,
`notifiers.aliyun.translate_aliyun_error`, `notifiers.tencent.translate_tencent_error`), with
`raise ... from exc`, so the original is kept as `__cause__`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

__all__ = [
    "NotifyError",
    "PermanentError",
    "PermanentReason",
    "TransientError",
    "TransientScope",
    "parse_retry_after",
]

PermanentReason = Literal["provider", "number", "opted_out"]
TransientScope = Literal["message", "account"]
_REASONS: frozenset[str] = frozenset({"provider", "number", "opted_out"})

ErrorCode = int | str


class NotifyError(Exception):
    """A message could not be handed to a provider.

    `code` is the provider's own error code (Twilio's 21211, a gateway's HTTP status...);
    `provider` is the name of the notifier that failed."""

    def __init__(
        self, message: str, *, code: ErrorCode | None = None, provider: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.provider = provider

    def __repr__(self) -> str:
        fields = ", ".join(f"{key}={value!r}" for key, value in self._fields().items())
        return f"{type(self).__name__}({self.message!r}, {fields})"

    def _fields(self) -> dict[str, object]:
        return {"code": self.code, "provider": self.provider}


class TransientError(NotifyError):
    """A failure that may pass. `retry_after_s`: the provider asked us to wait at least that long
    (Retry-After). `ambiguous`: the request may have reached the provider, so the message may have
    been sent (time-out, 5xx, connection dropped after the request was written); a retry can then
    send it twice. `scope`: `"account"` (the default) when the whole provider or account should
    back off, `"message"` when only this message must wait (a per-number flow control) and every
    other message may go on at full speed."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        retry_after_s: float | None = None,
        ambiguous: bool = False,
        provider: str | None = None,
        scope: TransientScope = "account",
    ) -> None:
        super().__init__(message, code=code, provider=provider)
        if scope not in ("message", "account"):
            raise ValueError(f"scope must be 'message' or 'account', not {scope!r}")
        if retry_after_s is not None and not (math.isfinite(retry_after_s) and retry_after_s >= 0):
            raise ValueError(f"retry_after_s must be a finite number >= 0, not {retry_after_s!r}")
        self.retry_after_s = retry_after_s
        self.ambiguous = ambiguous
        self.scope: TransientScope = scope

    def _fields(self) -> dict[str, object]:
        return {
            **super()._fields(),
            "retry_after_s": self.retry_after_s,
            "ambiguous": self.ambiguous,
            "scope": self.scope,
        }


class PermanentError(NotifyError):
    """A failure that retrying will not cure. `reason` says whose fault it is: `"provider"` (our
    account, configuration or the provider: a fallback provider may be tried), `"number"` (the
    recipient's number) or `"opted_out"` (the recipient said stop). The last two never go to
    another provider."""

    def __init__(
        self,
        message: str,
        *,
        code: ErrorCode | None = None,
        reason: PermanentReason = "provider",
        provider: str | None = None,
    ) -> None:
        super().__init__(message, code=code, provider=provider)
        if reason not in _REASONS:
            raise ValueError(f"reason must be one of {sorted(_REASONS)}, not {reason!r}")
        self.reason: PermanentReason = reason

    @property
    def opted_out(self) -> bool:
        """The recipient opted out: record it, and send this number nothing more."""
        return self.reason == "opted_out"

    @property
    def about_number(self) -> bool:
        """The failure is about the recipient, not the provider: no other provider may try."""
        return self.reason in ("number", "opted_out")

    def _fields(self) -> dict[str, object]:
        return {**super()._fields(), "reason": self.reason}


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delay-seconds (`"7"`) or an HTTP date.
    A date in the past gives 0; a missing or unreadable value gives None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; parsedate gives naive for "-0000"
        when = when.replace(tzinfo=UTC)
    moment = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - moment).total_seconds())
