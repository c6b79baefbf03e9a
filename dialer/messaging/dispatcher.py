"""The SMS dispatcher: drains the outbox by due time, through the notifier stack.

One message goes like this:

1. claimed: marked `sending` (attempts + 1) in its own transaction, BEFORE the provider call,
   so a crash mid-send leaves a visible `sending` row (`Outbox.claim_due`);
2. checked again: a number that opted out since it was queued is not sent to (dead,
   `opted_out`); a message older than `max_age_s` is dead (`expired`);
3. sent through the notifier (in-process retries, rate limit and fallback live there:
   `dialer.messaging.providers.build_notifier`);
4. its outcome saved, shielded from cancellation (the outcomes that arrive together are
   written in one transaction, `GroupCommit`): `sent` with the provider's id; a transient
   failure rescheduled (backoff from `backoff_initial_s`, doubling per attempt up to
   `backoff_max_s`, never sooner than the provider's Retry-After); a permanent one dead with its
   reason (`opted_out` also records the opt-out).

`start()` settles the rows a crash left `sending`: back to queued, due now (log
`sms.resend_after_crash`); with several workers, those of this worker's earlier life and of dead
workers, and `take_over()` does the same at each heartbeat for workers found dead since, never
before their lease ran out. Twilio has no idempotency key, so a message the provider took just
before the crash goes out twice; that window (between the provider's answer and our write) is
the only place a duplicate can come from.

`run(stop)` works until `stop` is set, then claims nothing more and lets the sends in flight
finish (the daemon cancels it after its grace period). `run_until_idle()` (for tests, arq's
burst mode) sends everything due now and returns how many messages it handled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.clock import Clock, Sleep
from dialer.health import Health, StoreUnavailable
from dialer.logs import bind_context, get_logger, unbind_context
from dialer.messaging.group_commit import GroupCommit
from dialer.messaging.ports import ClaimedMessage, MessageOutcome, Outbox
from dialer.metrics import NO_PROVIDER, Metrics
from notifiers import Notifier, OutboundSms, PermanentError, TransientError

__all__ = ["Dispatcher", "RetryPolicy"]

log = get_logger(__name__)

OUTCOME_BATCH = 200  # outcomes written in one transaction, at most


@dataclass(frozen=True)
class RetryPolicy:
    """When the store tries a message again (after the notifier's own in-process tries)."""

    backoff_initial_s: float = 30
    backoff_max_s: float = 3600
    max_age_s: float = 86400

    def delay_s(self, attempts: int, retry_after_s: float | None) -> float:
        """Wait before the next try, after `attempts` tries ended transient."""
        backoff = min(self.backoff_max_s, self.backoff_initial_s * 2.0 ** max(0, attempts - 1))
        return max(backoff, retry_after_s or 0.0)


@dataclass
class Counters:
    sent: int = 0
    retried: int = 0
    dead: int = 0
    settled: int = 0


class Dispatcher:
    def __init__(
        self,
        outbox: Outbox,
        notifier: Notifier,
        *,
        now: Clock,
        policy: RetryPolicy | None = None,
        concurrency: int = 10,
        poll_interval_s: float = 1.0,
        status_callback_url: str | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        sleep: Sleep = asyncio.sleep,
        channel: str = "sms",
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, not {concurrency!r}")
        self.outbox = outbox
        self.notifier = notifier
        # The webhooks' dispatcher (`channel` "webhook") says so on each of its log lines.
        self.log = log if channel == "sms" else log.bind(channel=channel)
        self.now = now
        self.policy = policy or RetryPolicy()
        self.concurrency = concurrency
        self.poll_interval_s = poll_interval_s
        self.status_callback_url = status_callback_url
        self.counters = Counters()
        self.metrics = metrics or Metrics()
        self.guard = (health or Health(now=now)).guard("dispatcher", sleep)
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        # Outcomes that arrive while one is being written are written together.
        self._outcomes: GroupCommit[MessageOutcome, None] = GroupCommit(
            self._write_outcomes,
            max_batch=OUTCOME_BATCH,
            name="outbox-writer",
            fails_alone=outbox.fails_alone,
        )

    async def _write_outcomes(self, outcomes: Sequence[MessageOutcome]) -> list[None]:
        await self.outbox.record_outcomes(outcomes)
        return [None] * len(outcomes)

    def wake(self) -> None:
        """Something was queued: look now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> int:
        """Settle what a crash left `sending` (this worker's earlier life, dead workers');
        returns how many rows."""
        return self._settled(await self.outbox.settle_sending(now=self.now()))

    async def take_over(self) -> int:
        """At each heartbeat: the messages dead workers left `sending` are queued again (never
        those of a live worker); returns how many rows."""
        return self._settled(await self.outbox.settle_sending(now=self.now(), own=False))

    def _settled(self, settled: list[tuple[int, str, str]]) -> int:
        for message_id, order_id, stage in settled:
            self.log.warning(
                "sms.resend_after_crash", message_id=message_id, order_id=order_id, stage=stage
            )
        self.counters.settled += len(settled)
        if settled:
            self.wake()
        return len(settled)

    async def run_until_idle(self) -> int:
        """Send every message due now, concurrently as configured; return how many ran."""
        handled = 0
        while True:
            free = self.concurrency - len(self._in_flight)
            claimed = await self._claim(free) if free > 0 else 0
            handled += claimed
            if not self._in_flight:
                if claimed == 0:
                    return handled
                continue
            await asyncio.wait(self._in_flight, return_when=asyncio.FIRST_COMPLETED)

    async def run(self, stop: asyncio.Event) -> None:
        """Send until `stop`. A failure of the store (or of a claim) never ends the loop: it
        is reported to `health`, and the loop waits its backoff and tries again."""
        while not stop.is_set():
            try:
                await self.start()
                break
            except Exception as exc:
                await self.guard.failed(exc)
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._in_flight)
                try:
                    claimed = await self._claim(free) if free > 0 else 0
                except Exception as exc:
                    await self.guard.failed(exc)
                    continue
                self.guard.worked()
                if claimed and claimed == free:
                    await asyncio.wait(
                        {*self._in_flight, stopping}, return_when=asyncio.FIRST_COMPLETED
                    )
                else:  # nothing more is due: wait for news, not in a loop of queries
                    await self._idle(stopping)
        finally:
            stopping.cancel()
            if self._in_flight:
                self.log.info("sms.dispatcher_draining", in_flight=len(self._in_flight))
                await asyncio.gather(*self._in_flight, return_exceptions=True)
            self.log.info(
                "sms.dispatcher_stopped",
                sent=self.counters.sent,
                retried=self.counters.retried,
                dead=self.counters.dead,
                settled=self.counters.settled,
            )

    async def _idle(self, stopping: asyncio.Task[bool]) -> None:
        """Wait for a wake-up, a finished send, the stop, or the poll interval."""
        self._wake.clear()
        waker = asyncio.create_task(self._wake.wait())
        try:
            await asyncio.wait(
                {waker, stopping, *self._in_flight},
                timeout=self.poll_interval_s,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waker.cancel()

    async def _claim(self, limit: int) -> int:
        claimed = await self.outbox.claim_due(now=self.now(), limit=limit)
        for message in claimed:
            task = asyncio.create_task(self._dispatch(message), name=f"sms-{message.id}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
        return len(claimed)

    async def _dispatch(self, message: ClaimedMessage) -> None:
        bind_context(order_id=message.order_id, stage=message.stage, message_id=message.id)
        try:
            await self._send(message)
        except Exception:  # a bug, or the store went away: the row stays `sending`
            self.log.exception("sms.dispatch_crashed")
        finally:
            unbind_context("order_id", "stage", "message_id")

    async def _send(self, message: ClaimedMessage) -> None:
        if message.opted_out:
            await self._dead(message, "opted_out", "the number opted out of SMS", None)
            return
        if self._too_old(message, self.now()):
            await self._dead(message, "expired", "older than max_age_s before it was sent", None)
            return
        outbound = OutboundSms(
            message_id=f"msg-{message.id}",
            to=message.phone,
            body=message.body,
            status_callback_url=self._callback_url(message.id),
            extra={"order_id": message.order_id, "stage": message.stage},
        )
        try:
            result = await self.notifier.send(outbound)
        except PermanentError as exc:
            self.log.warning("sms.send_failed", error=exc.message, code=exc.code, reason=exc.reason)
            await self._dead(
                message,
                exc.reason,
                exc.message,
                _code(exc.code),
                opt_out_phone=message.phone if exc.opted_out else None,
                provider=exc.provider,
            )
        except TransientError as exc:
            self.log.warning(
                "sms.send_failed", error=exc.message, code=exc.code, ambiguous=exc.ambiguous
            )
            await self._retry(message, exc)
        else:
            sent = MessageOutcome(
                "sent",
                message.id,
                self.now(),
                provider=result.provider,
                provider_message_id=result.provider_message_id,
            )
            await self._record(sent)
            self.counters.sent += 1
            self.metrics.sms_sent.labels(stage=message.stage, provider=result.provider).inc()
            self.log.info(
                "sms.sent",
                provider=result.provider,
                provider_message_id=result.provider_message_id,
                attempts=message.attempts,
            )

    async def _retry(self, message: ClaimedMessage, exc: TransientError) -> None:
        now = self.now()
        delay_s = self.policy.delay_s(message.attempts, exc.retry_after_s)
        due = now + timedelta(seconds=delay_s)
        if self._too_old(message, due):
            await self._dead(
                message,
                "expired",
                f"still failing: {exc.message}",
                _code(exc.code),
                provider=exc.provider,
            )
            return
        retry = MessageOutcome(
            "retry", message.id, now, at=due, error=exc.message, code=_code(exc.code)
        )
        await self._record(retry)
        self.counters.retried += 1
        self.log.info("sms.retry_scheduled", delay_s=delay_s, next_attempt_at=due.isoformat())

    async def _dead(
        self,
        message: ClaimedMessage,
        reason: str,
        error: str,
        code: str | None,
        *,
        opt_out_phone: str | None = None,
        provider: str | None = None,
    ) -> None:
        dead = MessageOutcome(
            "dead",
            message.id,
            self.now(),
            error=f"{reason}: {error}",
            code=code,
            opt_out_phone=opt_out_phone,
        )
        await self._record(dead)
        self.counters.dead += 1
        self.metrics.sms_dead.labels(stage=message.stage, provider=provider or NO_PROVIDER).inc()
        self.log.warning("sms.dead", reason=reason, code=code, error=error)

    async def _record(self, outcome: MessageOutcome) -> None:
        """Save an outcome, shielded from cancellation (the provider already acted), and again
        after a backoff while the store is unavailable (cancelled at shutdown: the row stays
        `sending` and is settled at the next start)."""
        while True:
            try:
                await _shielded(self._outcomes.enqueue(outcome))
            except StoreUnavailable as exc:
                await self.guard.failed(exc)
            else:
                return

    def _too_old(self, message: ClaimedMessage, at: datetime) -> bool:
        return (at - message.age_from).total_seconds() > self.policy.max_age_s

    def _callback_url(self, message_id: int) -> str | None:
        if not self.status_callback_url:
            return None
        joiner = "&" if "?" in self.status_callback_url else "?"
        return f"{self.status_callback_url}{joiner}message_id={message_id}"


def _code(code: int | str | None) -> str | None:
    return None if code is None else str(code)


async def _shielded(write: Awaitable[object]) -> None:
    """Save an outcome even when the dispatcher is being cancelled: the provider already acted.
    The cancellation is passed on once the write is done. (`write` is a future of the outcome
    writer, or any awaitable.)"""
    task = asyncio.ensure_future(write)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise
