"""send_with_retry: transient errors only, bounded by attempts and time, Retry-After honoured.
The sleep and the clock are injected: no test waits through a backoff."""

from __future__ import annotations

import pytest

from notifiers import (
    OutboundSms,
    PermanentError,
    RetryingNotifier,
    SendResult,
    TransientError,
    classify_error,
    classify_error_unless_ambiguous,
    send_with_retry,
)
from tests.fakes.clock import FakeClock, RecordingSleep
from tests.fakes.notifier import ScriptedNotifier

MESSAGE = OutboundSms("msg-42", "+8613812345678", "您的订单已发货")
OK = SendResult("fake", "fake-id", "queued")


async def test_transient_errors_then_success_returns_the_result_after_recorded_waits() -> None:
    notifier = ScriptedNotifier(script=[TransientError("503"), TransientError("503"), OK])
    sleep = RecordingSleep()
    result = await send_with_retry(notifier, MESSAGE, attempts=3, initial_wait_s=0.5, sleep=sleep)
    assert result == OK
    assert notifier.attempts == 3
    assert notifier.sent == [MESSAGE] * 3
    assert len(sleep.delays_s) == 2
    first, second = sleep.delays_s
    assert 0 <= first <= 0.5  # full jitter under initial * 2**0
    assert 0 <= second <= 1.0  # ... and under initial * 2**1


async def test_a_send_that_passes_at_once_neither_sleeps_nor_asks_the_classifier() -> None:
    notifier = ScriptedNotifier(script=[OK])
    sleep = RecordingSleep()
    asked: list[BaseException] = []

    def classify(exc: BaseException) -> bool | float:
        asked.append(exc)
        return classify_error(exc)

    assert await send_with_retry(notifier, MESSAGE, sleep=sleep, classify=classify) == OK
    assert notifier.attempts == 1
    assert sleep.delays_s == []
    assert asked == []


async def test_a_first_failure_waits_its_retry_after_and_is_attempt_one() -> None:
    first = TransientError("429", retry_after_s=7.0)
    notifier = ScriptedNotifier(script=[first, TransientError("503"), OK])
    sleep = RecordingSleep()
    heard: list[tuple[BaseException, int]] = []
    result = await send_with_retry(
        notifier,
        MESSAGE,
        attempts=3,
        sleep=sleep,
        on_retry=lambda error, attempt, _: heard.append((error, attempt)),
    )
    assert result == OK
    assert notifier.attempts == 3  # the first try is not made twice
    assert sleep.delays_s[0] == 7.0
    assert heard[0] == (first, 1)


async def test_a_permanent_error_is_never_retried() -> None:
    error = PermanentError("invalid number", code=21211, reason="number")
    notifier = ScriptedNotifier(script=[error])
    sleep = RecordingSleep()
    with pytest.raises(PermanentError) as raised:
        await send_with_retry(notifier, MESSAGE, sleep=sleep)
    assert raised.value is error
    assert notifier.attempts == 1
    assert sleep.delays_s == []


async def test_an_unexpected_exception_is_not_retried() -> None:
    notifier = ScriptedNotifier(script=[RuntimeError("bug")])
    with pytest.raises(RuntimeError, match="bug"):
        await send_with_retry(notifier, MESSAGE, sleep=RecordingSleep())
    assert notifier.attempts == 1


async def test_attempts_bound_the_tries_and_the_last_error_is_reraised() -> None:
    errors = [TransientError(f"down {n}") for n in range(1, 6)]
    notifier = ScriptedNotifier(script=list(errors))
    sleep = RecordingSleep()
    with pytest.raises(TransientError) as raised:
        await send_with_retry(notifier, MESSAGE, attempts=3, sleep=sleep)
    assert raised.value is errors[2]
    assert notifier.attempts == 3
    assert len(sleep.delays_s) == 2


async def test_total_time_bounds_the_tries() -> None:
    clock = FakeClock()
    notifier = ScriptedNotifier(
        script=[TransientError("slow")] * 10, clock=clock, send_duration_s=10.0
    )
    sleep = RecordingSleep(clock)
    with pytest.raises(TransientError):
        await send_with_retry(
            notifier, MESSAGE, attempts=10, max_time_s=15.0, sleep=sleep, clock=clock
        )
    # try 1 ends at 10 s, a wait <= 0.5 s fits in 15 s; try 2 ends past 20 s: no more
    assert notifier.attempts == 2
    assert len(sleep.delays_s) == 1


async def test_a_wait_that_would_end_past_the_time_bound_is_not_started() -> None:
    clock = FakeClock()
    notifier = ScriptedNotifier(
        script=[TransientError("busy", retry_after_s=8.0)], clock=clock, send_duration_s=3.0
    )
    sleep = RecordingSleep(clock)
    with pytest.raises(TransientError):
        await send_with_retry(
            notifier, MESSAGE, max_time_s=10.0, max_wait_s=10.0, sleep=sleep, clock=clock
        )
    assert notifier.attempts == 1  # 3 s spent + 8 s asked > 10 s
    assert sleep.delays_s == []


async def test_a_message_scoped_wait_longer_than_the_bound_goes_back_to_the_store() -> None:
    daily_limit = TransientError(
        "this number's daily limit", retry_after_s=6 * 3600.0, scope="message"
    )
    notifier = ScriptedNotifier(script=[daily_limit, OK])
    sleep = RecordingSleep()
    with pytest.raises(TransientError) as raised:
        await send_with_retry(notifier, MESSAGE, max_wait_s=10.0, sleep=sleep)
    assert raised.value is daily_limit  # retry_after_s and scope intact, for the store
    assert notifier.attempts == 1
    assert sleep.delays_s == []


async def test_a_short_message_scoped_wait_is_waited_in_process() -> None:
    thirty_seconds = TransientError("30 s limit", retry_after_s=30.0, scope="message")
    notifier = ScriptedNotifier(script=[thirty_seconds, OK])
    sleep = RecordingSleep()
    result = await send_with_retry(notifier, MESSAGE, max_wait_s=60.0, max_time_s=90.0, sleep=sleep)
    assert result == OK
    assert sleep.delays_s == [30.0]


async def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    notifier = ScriptedNotifier(script=[TransientError("429", retry_after_s=7.0), OK])
    sleep = RecordingSleep()
    result = await send_with_retry(notifier, MESSAGE, initial_wait_s=0.5, sleep=sleep)
    assert result == OK
    assert sleep.delays_s == [7.0]


async def test_a_retry_after_of_zero_still_retries() -> None:
    notifier = ScriptedNotifier(script=[TransientError("429", retry_after_s=0.0), OK])
    sleep = RecordingSleep()
    assert await send_with_retry(notifier, MESSAGE, sleep=sleep) == OK
    assert notifier.attempts == 2
    assert 0 <= sleep.delays_s[0] <= 0.5


async def test_a_retry_after_beyond_max_wait_is_left_to_the_caller() -> None:
    error = TransientError("429", retry_after_s=60.0)
    notifier = ScriptedNotifier(script=[error, OK])
    sleep = RecordingSleep()
    with pytest.raises(TransientError) as raised:
        await send_with_retry(notifier, MESSAGE, max_wait_s=10.0, sleep=sleep)
    assert raised.value is error
    assert raised.value.retry_after_s == 60.0  # for the store to reschedule
    assert notifier.attempts == 1
    assert sleep.delays_s == []


async def test_backoff_never_exceeds_max_wait() -> None:
    notifier = ScriptedNotifier(script=[TransientError("down")] * 7)
    sleep = RecordingSleep()
    await send_with_retry(
        notifier, MESSAGE, attempts=8, initial_wait_s=1.0, max_wait_s=2.0, sleep=sleep
    )
    assert len(sleep.delays_s) == 7
    assert all(0 <= delay <= 2.0 for delay in sleep.delays_s)


async def test_ambiguous_errors_can_be_kept_from_retrying() -> None:
    ambiguous = TransientError("timed out", ambiguous=True)
    notifier = ScriptedNotifier(script=[ambiguous, OK])
    with pytest.raises(TransientError):
        await send_with_retry(
            notifier, MESSAGE, sleep=RecordingSleep(), classify=classify_error_unless_ambiguous
        )
    assert notifier.attempts == 1


async def test_unambiguous_errors_are_retried_by_the_strict_classifier() -> None:
    notifier = ScriptedNotifier(script=[TransientError("refused", ambiguous=False), OK])
    result = await send_with_retry(
        notifier, MESSAGE, sleep=RecordingSleep(), classify=classify_error_unless_ambiguous
    )
    assert result == OK


def test_the_classifier_returns_false_true_or_the_least_wait() -> None:
    assert classify_error(PermanentError("x")) is False
    assert classify_error(ValueError("x")) is False
    assert classify_error(TransientError("x")) is True
    assert classify_error(TransientError("x", retry_after_s=3.0)) == 3.0


async def test_on_retry_hears_each_error_with_its_attempt_and_wait() -> None:
    first, second = TransientError("a"), TransientError("b", retry_after_s=4.0)
    notifier = ScriptedNotifier(script=[first, second, OK])
    heard: list[tuple[BaseException, int, float]] = []
    sleep = RecordingSleep()
    await send_with_retry(
        notifier,
        MESSAGE,
        sleep=sleep,
        on_retry=lambda error, attempt, wait_s: heard.append((error, attempt, wait_s)),
    )
    assert [(error, attempt) for error, attempt, _ in heard] == [(first, 1), (second, 2)]
    assert [wait_s for _, _, wait_s in heard] == sleep.delays_s
    assert heard[1][2] == 4.0


async def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="attempts"):
        await send_with_retry(ScriptedNotifier(), MESSAGE, attempts=0)


async def test_retrying_notifier_retries_with_its_settings_and_closes_the_inner_one() -> None:
    inner = ScriptedNotifier("twilio", [TransientError("down")] * 2)
    sleep = RecordingSleep()
    notifier = RetryingNotifier(inner, attempts=2, sleep=sleep)
    assert notifier.name == "twilio"
    with pytest.raises(TransientError):
        await notifier.send(MESSAGE)
    assert inner.attempts == 2
    result = await notifier.send(MESSAGE)
    assert result.provider == "twilio"
    await notifier.close()
    assert inner.closed == 1
