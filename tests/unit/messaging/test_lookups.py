"""Looking up a send that went unanswered: which days are asked, what a failed lookup means."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from dialer.http.cloud_sms import our_message_id
from dialer.messaging.lookups import LOOKUP_MAX_DAYS, find_sent, lookup_days
from notifiers import OutboundSms, PermanentError, SendResult, TransientError

SMS = OutboundSms("msg-7", "+8613812345678", "text")


class RecordingLookup:
    """A provider's lookup: records the days asked, answers from `found` or raises `error`."""

    def __init__(
        self, name: str, found: dict[date, SendResult] | None = None, error: Exception | None = None
    ) -> None:
        self.name = name
        self.found = found or {}
        self.error = error
        self.days: list[date] = []

    async def lookup(self, message: OutboundSms, sent_on: date) -> SendResult | None:
        self.days.append(sent_on)
        if self.error is not None:
            raise self.error
        return self.found.get(sent_on)


def test_the_days_are_beijing_days_from_the_unanswered_send_to_now() -> None:
    since = datetime(2025, 6, 2, 15, 30, tzinfo=UTC)  # 23:30 in Beijing
    now = datetime(2025, 6, 2, 16, 30, tzinfo=UTC)  # 00:30 the next day there
    assert lookup_days(since, now) == [date(2025, 6, 2), date(2025, 6, 3)]


def test_only_the_latest_days_are_looked_through() -> None:
    since = datetime(2025, 6, 1, 4, tzinfo=UTC)
    days = lookup_days(since, datetime(2025, 6, 20, 4, tzinfo=UTC))
    assert len(days) == LOOKUP_MAX_DAYS
    assert days[-1] == date(2025, 6, 20)


async def test_the_first_provider_that_took_it_answers() -> None:
    took = SendResult("tencent", "2028:abc", "delivered")
    aliyun = RecordingLookup("aliyun")
    tencent = RecordingLookup("tencent", {date(2025, 6, 2): took})
    since = datetime(2025, 6, 2, 4, tzinfo=UTC)
    assert await find_sent([aliyun, tencent], SMS, since=since, now=since) == took
    assert aliyun.days == [date(2025, 6, 2)]


async def test_nobody_took_it() -> None:
    since = datetime(2025, 6, 2, 4, tzinfo=UTC)
    assert await find_sent([RecordingLookup("aliyun")], SMS, since=since, now=since) is None


async def test_a_lookup_that_fails_for_good_still_only_delays_the_message() -> None:
    failing = RecordingLookup("aliyun", error=PermanentError("bad key", code="Forbidden.RAM"))
    since = datetime(2025, 6, 2, 4, tzinfo=UTC)
    with pytest.raises(TransientError) as raised:
        await find_sent([failing], SMS, since=since, now=since)
    assert raised.value.ambiguous is True
    assert (raised.value.code, raised.value.provider) == ("Forbidden.RAM", "aliyun")


@pytest.mark.parametrize(
    ("sent_as", "row_id"),
    [("msg-42", 42), ("msg-", None), ("42", None), ("msg-4x", None), (None, None)],
)
def test_our_id_comes_back_from_out_id_and_session_context(
    sent_as: str | None, row_id: int | None
) -> None:
    assert our_message_id(sent_as) == row_id
