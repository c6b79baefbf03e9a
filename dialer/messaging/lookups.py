"""Before a message is sent again after a send that went unanswered: did a provider take it?

Neither Aliyun's nor Tencent Cloud's SendSms is idempotent. A send whose answer was lost (a
read time-out, a reset after the request was written, a crash or a stop mid-send) leaves the
message `ambiguous_since` that moment (`dialer.store.outbox`). Before it is sent again, each
provider of the stack that can tell (`SentLookup`) is asked, for every Beijing calendar day
from then to now (their records are indexed by day), whether it took a message with our id:
Aliyun's QuerySendDetails matched on OutId, Tencent's PullSmsSendStatusByPhoneNumber matched on
SessionContext. Found: the message is recorded sent, nothing goes out. Not found: it is sent.
A lookup that fails: the message waits (a retry), and nothing goes out.

What is left: a provider that cannot look up (Twilio, an HTTP gateway) may send twice, and so
may Tencent for a message accepted but not yet reported (its API lists a message once its
delivery report is in).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

from notifiers import NotifyError, OutboundSms, SendResult, TransientError
from notifiers.mainland import BEIJING

__all__ = ["LOOKUP_MAX_DAYS", "SentLookup", "find_sent", "lookup_days"]

LOOKUP_MAX_DAYS = 3
"""Days looked through at most (the latest): a message older than max_age_s is dead anyway."""


@runtime_checkable
class SentLookup(Protocol):
    """A provider that can say whether it took a message of ours on a given (Beijing) day."""

    name: str

    async def lookup(self, message: OutboundSms, sent_on: date) -> SendResult | None: ...


def lookup_days(since: datetime, now: datetime) -> list[date]:
    """The Beijing calendar days from `since` to `now`, the latest `LOOKUP_MAX_DAYS`."""
    first = since.astimezone(BEIJING).date()
    last = max(first, now.astimezone(BEIJING).date())
    count = min(LOOKUP_MAX_DAYS, (last - first).days + 1)
    return [last - timedelta(days=back) for back in reversed(range(count))]


async def find_sent(
    lookups: Sequence[SentLookup], message: OutboundSms, *, since: datetime, now: datetime
) -> SendResult | None:
    """The record of `message` at the first provider that took it since `since`; None when
    none did. A provider that cannot answer: `TransientError(ambiguous=True)` (try later;
    sending now could send twice), whatever its own error was."""
    days = lookup_days(since, now)
    for lookup in lookups:
        for day in days:
            try:
                found = await lookup.lookup(message, day)
            except NotifyError as exc:
                raise TransientError(
                    f"cannot tell whether an earlier send was taken ({lookup.name} lookup "
                    f"failed: {exc.message}); not sending it again yet",
                    code=exc.code,
                    ambiguous=True,
                    provider=lookup.name,
                ) from exc
            if found is not None:
                return found
    return None
