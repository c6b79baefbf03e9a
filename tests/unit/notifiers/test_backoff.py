"""Account-level throttling pauses the whole provider; per-number flow control does not."""

from __future__ import annotations

import pytest

from notifiers import OutboundSms, TransientError
from notifiers.backoff import AccountBackoffNotifier
from tests.fakes.clock import FakeClock
from tests.fakes.notifier import ScriptedNotifier

SMS = OutboundSms("msg-1", "+8613812345678", "text")


async def test_a_throttled_account_stops_every_send_until_its_wait_is_over() -> None:
    clock = FakeClock()
    throttled = TransientError("slow down", code="Throttling.User", retry_after_s=5.0)
    inner = ScriptedNotifier("aliyun", [throttled])
    notifier = AccountBackoffNotifier(inner, clock=clock)
    with pytest.raises(TransientError):
        await notifier.send(SMS)
    clock.advance(2.0)
    with pytest.raises(TransientError) as raised:
        await notifier.send(OutboundSms("msg-2", "+8613900001111", "other"))
    assert inner.attempts == 1  # no request while backing off
    assert raised.value.retry_after_s == pytest.approx(3.0)
    assert (raised.value.code, raised.value.scope) == ("Throttling.User", "account")
    clock.advance(3.0)
    assert (await notifier.send(SMS)).provider == "aliyun"
    assert inner.attempts == 2


async def test_one_numbers_flow_control_delays_no_other_message() -> None:
    clock = FakeClock()
    limited = TransientError("number", retry_after_s=3600.0, scope="message")
    inner = ScriptedNotifier("tencent", [limited])
    notifier = AccountBackoffNotifier(inner, clock=clock)
    with pytest.raises(TransientError):
        await notifier.send(SMS)
    assert notifier.backing_off_s == 0
    await notifier.send(OutboundSms("msg-2", "+8613900001111", "other"))
    assert inner.attempts == 2


async def test_a_throttling_without_a_wait_does_not_pause() -> None:
    inner = ScriptedNotifier("aliyun", [TransientError("busy")])
    notifier = AccountBackoffNotifier(inner, clock=FakeClock())
    with pytest.raises(TransientError):
        await notifier.send(SMS)
    await notifier.send(SMS)
    assert inner.attempts == 2
