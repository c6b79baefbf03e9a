"""The fallback provider: tried for a provider's failure, never for the number's."""

from __future__ import annotations

import pytest

from notifiers import (
    FallbackNotifier,
    NotifyError,
    OutboundSms,
    PermanentError,
    RetryingNotifier,
    TransientError,
    should_fall_back,
)
from tests.fakes.clock import RecordingSleep
from tests.fakes.notifier import ScriptedNotifier

MESSAGE = OutboundSms("msg-7", "+8613812345678", "【优品购】您的订单已签收")


def pair(
    primary_script: list[BaseException], fallback_script: list[BaseException] | None = None
) -> tuple[FallbackNotifier, ScriptedNotifier, ScriptedNotifier]:
    primary = ScriptedNotifier("twilio", primary_script)
    fallback = ScriptedNotifier("gateway", fallback_script or [])
    return FallbackNotifier(primary, fallback), primary, fallback


async def test_the_primary_sends_when_it_can() -> None:
    notifier, primary, fallback = pair([])
    result = await notifier.send(MESSAGE)
    assert result.provider == "twilio"
    assert (primary.attempts, fallback.attempts) == (1, 0)


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("auth failed", code=20003, reason="provider"),
        TransientError("outage", code=503, ambiguous=True),
        TransientError("refused", ambiguous=False),
    ],
    ids=["auth", "outage", "refused"],
)
async def test_a_provider_failure_goes_to_the_fallback(error: NotifyError) -> None:
    notifier, primary, fallback = pair([error])
    result = await notifier.send(MESSAGE)
    assert result.provider == "gateway"
    assert primary.sent == [MESSAGE]
    assert fallback.sent == [MESSAGE]


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("invalid number", code=21211, reason="number"),
        PermanentError("not a mobile", code=21614, reason="number"),
        PermanentError("unsubscribed", code=21610, reason="opted_out"),
    ],
    ids=["invalid", "landline", "opted-out"],
)
async def test_a_number_failure_never_goes_to_the_fallback(error: PermanentError) -> None:
    notifier, _, fallback = pair([error])
    with pytest.raises(PermanentError) as raised:
        await notifier.send(MESSAGE)
    assert raised.value is error
    assert fallback.attempts == 0


async def test_an_ambiguous_failure_can_be_kept_from_the_fallback() -> None:
    primary = ScriptedNotifier("twilio", [TransientError("timed out", ambiguous=True)])
    fallback = ScriptedNotifier("gateway")
    notifier = FallbackNotifier(primary, fallback, fallback_on_ambiguous=False)
    with pytest.raises(TransientError):
        await notifier.send(MESSAGE)
    assert fallback.attempts == 0


async def test_a_per_number_flow_control_waits_instead_of_going_to_the_fallback() -> None:
    error = TransientError("30 s limit for this number", retry_after_s=30.0, scope="message")
    notifier, primary, fallback = pair([error])
    with pytest.raises(TransientError) as raised:
        await notifier.send(MESSAGE)
    assert raised.value is error
    assert (primary.attempts, fallback.attempts) == (1, 0)


async def test_a_foreign_exception_is_not_a_reason_to_fall_back() -> None:
    notifier, _, fallback = pair([RuntimeError("bug")])
    with pytest.raises(RuntimeError):
        await notifier.send(MESSAGE)
    assert fallback.attempts == 0


async def test_the_fallback_is_tried_only_after_the_primary_retries() -> None:
    primary = ScriptedNotifier("twilio", [TransientError("503", ambiguous=True)] * 3)
    fallback = ScriptedNotifier("gateway")
    notifier = FallbackNotifier(
        RetryingNotifier(primary, attempts=3, sleep=RecordingSleep()),
        RetryingNotifier(fallback, attempts=3, sleep=RecordingSleep()),
    )
    result = await notifier.send(MESSAGE)
    assert result.provider == "gateway"
    assert (primary.attempts, fallback.attempts) == (3, 1)


async def test_when_both_fail_a_number_verdict_from_the_fallback_wins() -> None:
    first = PermanentError("auth", reason="provider")
    second = PermanentError("invalid", reason="number")
    notifier, _, _ = pair([first], [second])
    with pytest.raises(PermanentError) as raised:
        await notifier.send(MESSAGE)
    assert raised.value is second
    assert raised.value.__cause__ is first


async def test_when_both_fail_a_transient_error_is_raised_so_the_message_is_tried_later() -> None:
    first = TransientError("outage")
    second = PermanentError("gateway misconfigured", reason="provider")
    notifier, _, _ = pair([first], [second])
    with pytest.raises(TransientError) as raised:
        await notifier.send(MESSAGE)
    assert raised.value is first
    assert raised.value.__cause__ is second


async def test_when_both_fail_for_the_provider_the_fallbacks_error_is_raised() -> None:
    first = PermanentError("auth", reason="provider")
    second = PermanentError("quota", reason="provider")
    notifier, _, _ = pair([first], [second])
    with pytest.raises(PermanentError) as raised:
        await notifier.send(MESSAGE)
    assert raised.value is second


def test_should_fall_back_table() -> None:
    assert should_fall_back(PermanentError("x", reason="provider"))
    assert not should_fall_back(PermanentError("x", reason="number"))
    assert not should_fall_back(PermanentError("x", reason="opted_out"))
    assert should_fall_back(TransientError("x", ambiguous=True))
    assert not should_fall_back(TransientError("x", ambiguous=True), fallback_on_ambiguous=False)
    assert should_fall_back(TransientError("x", ambiguous=False), fallback_on_ambiguous=False)


async def test_close_closes_both_and_the_name_shows_both() -> None:
    notifier, primary, fallback = pair([])
    assert notifier.name == "twilio+gateway"
    await notifier.close()
    assert (primary.closed, fallback.closed) == (1, 1)
