"""The provider protocol: a message in, a result out, or an error from `notifiers.errors`.

Also `segments(body)`: how many SMS segments a text costs, and in which encoding. A text that
fits the GSM 03.38 alphabet goes as GSM-7 (160 septets in one SMS, 153 per part when
concatenated; the extension characters `^ { } \\ [ ] ~ | €` and form feed take two septets).
Anything else (Chinese, the 【】 brackets of a sender signature, emoji) forces UCS-2 for the
whole text: 70 UTF-16 code units in one SMS, 67 per part. A two-septet character or a surrogate
pair is never split across parts, as phones and providers do.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple, Protocol, runtime_checkable

__all__ = [
    "Encoding",
    "Notifier",
    "OutboundSms",
    "ProviderTemplate",
    "SegmentCount",
    "SendResult",
    "segments",
]


@dataclass(frozen=True)
class ProviderTemplate:
    """A template approved at the provider, and the values of its variables.

    Mainland China providers (Aliyun, Tencent Cloud) send only pre-approved templates: `code` is
    the provider's id for it (Aliyun's TemplateCode "SMS_123456789", Tencent's TemplateId
    "1110"); `params` maps each variable's name to its value, in the template's order (Aliyun
    sends them as a JSON object by name, Tencent as a list by position: {1}, {2}...)."""

    code: str
    params: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class OutboundSms:
    """One SMS to send.

    `message_id` is our own id ("msg-42"), stable across retries; `to` is an E.164 number;
    `body` is the rendered text (what the outbox and the status page show, what Twilio sends);
    `status_callback_url` asks a provider that supports it (Twilio) to report delivery there;
    `extra` holds more named values a generic gateway's body template may use (`order_id`,
    `stage`); `template` is the approved provider template a template-only provider sends
    instead of `body` (Aliyun, Tencent Cloud); the others ignore it. `provider_templates` holds
    one per provider name, when providers of a fallback chain hold different templates: a
    template-only notifier takes the one under its own `name` first, else `template`."""

    message_id: str
    to: str
    body: str
    status_callback_url: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)
    template: ProviderTemplate | None = None
    provider_templates: Mapping[str, ProviderTemplate] = field(default_factory=dict, hash=False)

    def template_for(self, provider: str) -> ProviderTemplate | None:
        """The template provider `provider` (a notifier's name) sends."""
        return self.provider_templates.get(provider, self.template)


@dataclass(frozen=True)
class SendResult:
    """The provider accepted the message: who (`provider`, the notifier's name), under which id
    (`provider_message_id`, e.g. Twilio's "SM..."), and its first status ("queued", "accepted",
    "sent")."""

    provider: str
    provider_message_id: str
    status: str


@runtime_checkable
class Notifier(Protocol):
    """Sends one message through one provider.

    `send` returns a `SendResult`, or raises `TransientError` / `PermanentError`
    (`notifiers.errors`), never a library's own exception. `close` releases what the notifier
    holds (HTTP sessions); it may be called more than once."""

    name: str

    async def send(self, message: OutboundSms) -> SendResult: ...

    async def close(self) -> None: ...


# --------------------------------------------------------------------------- segments

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 default alphabet (the escape 0x1B left out: it is not a character one writes).
_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each is sent as ESC + char, two septets.
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

_GSM7_SINGLE, _GSM7_PART = 160, 153
_UCS2_SINGLE, _UCS2_PART = 70, 67


class SegmentCount(NamedTuple):
    """How a text is sent: its encoding and the number of SMS segments (parts) it takes."""

    encoding: Encoding
    parts: int


def segments(body: str) -> SegmentCount:
    """Encoding and number of SMS segments of `body`; an empty text still costs one."""
    if all(char in _GSM7_BASIC or char in _GSM7_EXTENSION for char in body):
        sizes = [2 if char in _GSM7_EXTENSION else 1 for char in body]
        return SegmentCount("GSM-7", _pack(sizes, _GSM7_SINGLE, _GSM7_PART))
    sizes = [2 if ord(char) > 0xFFFF else 1 for char in body]  # UTF-16 surrogate pairs
    return SegmentCount("UCS-2", _pack(sizes, _UCS2_SINGLE, _UCS2_PART))


def _pack(sizes: Iterable[int], single: int, part: int) -> int:
    """Parts needed for characters of the given sizes, never splitting a character."""
    sizes = list(sizes)
    if sum(sizes) <= single:
        return 1
    count, used = 1, 0
    for size in sizes:
        if used + size > part:
            count, used = count + 1, 0
        used += size
    return count
