"""What the mainland China SMS providers (Aliyun, Tencent Cloud) share: Beijing time, number
checks, the checks of a template's variables before sending, and the error classification rows
their tables are made of.

Template variables are checked against the providers' documented rules before a request is made
(a refused message costs nothing and says why):

- every variable of the template has a string value; Aliyun refuses an empty one;
- a value is at most `max_param_chars` characters (each Chinese character, letter, digit,
  punctuation mark or space counts as one); None means no per-variable limit;
- the values together fit the 500-character limit of a whole message;
- no value is, or contains, a link: both providers refuse links passed in variables (a link must
  be fixed text in the approved template).

A failure is `PermanentError(reason="provider", code="template_param_invalid")`: the template
or the data feeding it is wrong, and another provider may hold a template that fits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Literal

from notifiers.base import OutboundSms, ProviderTemplate
from notifiers.errors import (
    NotifyError,
    PermanentError,
    PermanentReason,
    TransientError,
    TransientScope,
)

__all__ = [
    "BEIJING",
    "MAX_MESSAGE_CHARS",
    "TEMPLATE_PARAM_INVALID",
    "Classification",
    "beijing_today",
    "check_template",
    "contains_link",
    "mainland_number",
    "permanent",
    "seconds_until_next_beijing_day",
    "transient",
    "utc_now",
]

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991
MAX_MESSAGE_CHARS = 500  # both providers: signature + text + variable values
TEMPLATE_PARAM_INVALID = "template_param_invalid"
TEMPLATE_MISSING = "template_missing"
INVALID_NUMBER = "invalid_number"

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_MAINLAND_MOBILE = re.compile(r"1[0-9]{10}")
# A link in a variable: a scheme, "www.", or a host name under a common top-level domain
# (short-link hosts such as t.cn and dwz.cn included), optionally followed by a path.
_LINK = re.compile(
    r"[a-z][a-z0-9+.-]*://|\bwww\.|"
    r"\b(?:[a-z0-9-]+\.)+(?:com|cn|net|org|io|cc|co|me|info|biz|top|xyz|vip|shop|site|link|"
    r"ly|gl|gd|tv|so|app|online|ink|club|wang|ltd|tech)\b(?::\d+)?(?:/|\b)",
    re.IGNORECASE,
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def beijing_today(now: Callable[[], datetime]) -> date:
    """The providers' calendar day (their daily limits and lookups run on Beijing time)."""
    return now().astimezone(BEIJING).date()


def seconds_until_next_beijing_day(moment: datetime) -> float:
    local = moment.astimezone(BEIJING)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), BEIJING)
    return max(1.0, (midnight - local).total_seconds())


def mainland_number(e164: str, *, provider: str | None = None) -> str | None:
    """The 11-digit national number of a +86 mobile number; None for any other country.
    PermanentError(reason="number") when `e164` is not E.164 or not a mainland mobile."""
    if not _E164.fullmatch(e164):
        raise PermanentError(
            f"not an E.164 number: {e164[:4]}…",
            code=INVALID_NUMBER,
            reason="number",
            provider=provider,
        )
    if not e164.startswith("+86"):
        return None
    national = e164[3:]
    if not _MAINLAND_MOBILE.fullmatch(national):
        raise PermanentError(
            "not a mainland China mobile number (+86 1xx xxxx xxxx)",
            code=INVALID_NUMBER,
            reason="number",
            provider=provider,
        )
    return national


def contains_link(value: str) -> bool:
    return _LINK.search(value) is not None


def check_template(
    message: OutboundSms,
    *,
    provider: str,
    max_param_chars: int | None,
    allow_empty: bool,
) -> ProviderTemplate:
    """The message's template for `provider` (`OutboundSms.template_for`), checked as the
    module docstring says."""
    template = message.template_for(provider)
    if template is None or not template.code:
        raise PermanentError(
            f"{provider} sends only approved templates: message {message.message_id} carries "
            "no ProviderTemplate (template code and variables)",
            code=TEMPLATE_MISSING,
            provider=provider,
        )
    _check_params(template.params, provider, max_param_chars, allow_empty)
    return template


def _check_params(
    params: Mapping[str, str], provider: str, max_param_chars: int | None, allow_empty: bool
) -> None:
    total = 0
    for name, value in params.items():
        if not isinstance(value, str):
            _refuse(provider, f"variable {name!r} must be a string, not {type(value).__name__}")
        if not value and not allow_empty:
            _refuse(provider, f"variable {name!r} is empty")
        if max_param_chars is not None and len(value) > max_param_chars:
            _refuse(
                provider,
                f"variable {name!r} has {len(value)} characters, more than the "
                f"{max_param_chars} allowed",
            )
        if contains_link(value):
            _refuse(provider, f"variable {name!r} holds a link; links must be fixed template text")
        total += len(value)
    if total > MAX_MESSAGE_CHARS:
        _refuse(provider, f"the variables hold {total} characters, over {MAX_MESSAGE_CHARS}")


def _refuse(provider: str, detail: str) -> None:
    raise PermanentError(
        f"template variables refused before sending: {detail}",
        code=TEMPLATE_PARAM_INVALID,
        reason="provider",
        provider=provider,
    )


# --------------------------------------------------------------------------- classification

Wait = float | Literal["next_day"] | None


@dataclass(frozen=True)
class Classification:
    """What a provider's error code means: transient (with its scope, wait and ambiguity) or
    permanent (with its reason). One row of a provider's table."""

    outcome: Literal["transient", "permanent"]
    reason: PermanentReason = "provider"
    scope: TransientScope = "account"
    wait: Wait = None  # seconds, or "next_day": until the next Beijing midnight
    ambiguous: bool = False

    def error(
        self,
        text: str,
        *,
        code: str,
        provider: str,
        now: datetime,
        retry_after_s: float | None = None,
    ) -> NotifyError:
        """The error this classification means; `retry_after_s` (the provider's own) wins."""
        if self.outcome == "permanent":
            return PermanentError(text, code=code, reason=self.reason, provider=provider)
        wait_s = retry_after_s
        if wait_s is None and self.wait == "next_day":
            wait_s = seconds_until_next_beijing_day(now)
        elif wait_s is None and self.wait is not None:
            wait_s = float(self.wait)
        return TransientError(
            text,
            code=code,
            retry_after_s=wait_s,
            ambiguous=self.ambiguous,
            provider=provider,
            scope=self.scope,
        )


def transient(
    *, scope: TransientScope = "account", wait: Wait = None, ambiguous: bool = False
) -> Classification:
    return Classification("transient", scope=scope, wait=wait, ambiguous=ambiguous)


def permanent(reason: PermanentReason) -> Classification:
    return Classification("permanent", reason=reason)
