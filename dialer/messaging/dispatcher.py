"""The SMS dispatcher: drains the outbox by due time, through the notifier stack.

One message goes like this:

1. claimed: marked `sending` (attempts + 1) in its own transaction, BEFORE the provider call,
   so a crash mid-send leaves a visible `sending` row (`Outbox.claim_due`);
2. checked again: a number that opted out since it was queued is not sent to (dead,
   `opted_out`); a message older than `max_age_s` is dead (`expired`); a message whose earlier
   send went unanswered (`ambiguous_since`) is looked up at the providers that can tell
   (`dialer.messaging.lookups`): found, it is recorded sent and not sent again; a number
   that had its daily limit is held to the next day (`dialer.messaging.limits`);
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
before their lease ran out. Such a row, like one whose send timed out, is `ambiguous_since`:
Aliyun and Tencent are asked before it goes again; Twilio (no idempotency key, no lookup) may
send it twice.

`run(stop)` works until `stop` is set, then claims nothing more and lets the sends in flight
finish (the daemon cancels it after its grace period). `run_until_idle()` (for tests, arq's
burst mode) sends everything due now and returns how many messages it handled.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from dialer.clock import Clock, Sleep
from dialer.health import Health, StoreUnavailable
from dialer.logs import bind_context, get_logger, unbind_context
from dialer.messaging.group_commit import GroupCommit, shielded
from dialer.messaging.limits import DailyLimit, NumberTurns
from dialer.messaging.lookups import SentLookup, find_sent
from dialer.messaging.ports import ClaimedMessage, MessageOutcome, Outbox
from dialer.messaging.retry_policy import Counters, RetryPolicy
from dialer.metrics import NO_PROVIDER, Metrics
from notifiers import (
    Notifier,
    OutboundSms,
    PermanentError,
    ProviderTemplate,
    SendResult,
    TransientError,
)

__all__ = ["Dispatcher", "RetryPolicy"]

log = get_logger(__name__)

OUTCOME_BATCH = 200  # outcomes written in one transaction, at most
CLAIM_IN_PARTS = 5  # when busy, claim again once this share of `concurrency` is free


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
        lookups: Sequence[SentLookup] = (),
        daily_limit: DailyLimit | None = None,
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
        self.lookups = tuple(lookups)
        self.daily_limit = daily_limit
        self._turns = NumberTurns()
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
                self._wake.clear()  # news from here on wakes the next idle wait at once
                try:
                    claimed = await self._claim(free) if free > 0 else 0
                except Exception as exc:
                    await self.guard.failed(exc)
                    continue
                self.guard.worked()
                if claimed and claimed == free:
                    await self._room_to_claim(stopping)
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

    async def _room_to_claim(self, stopping: asyncio.Task[bool]) -> None:
        """Every slot was filled, so more may be due: wait until a fifth of the slots are free
        (or the stop). Claiming again as each send ends would cost the store a transaction per
        message; claiming in fifths costs one per `concurrency / 5` messages."""
        wanted_free = max(1, self.concurrency // CLAIM_IN_PARTS)
        while self.concurrency - len(self._in_flight) < wanted_free and not stopping.done():
            await asyncio.wait({*self._in_flight, stopping}, return_when=asyncio.FIRST_COMPLETED)

    async def _idle(self, stopping: asyncio.Task[bool]) -> None:
        """Wait for a wake-up (also one that came during the claim), a finished send, the
        stop, or the poll interval."""
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
        if self.daily_limit is None:
            await self._deliver(message)
            return
        async with self._turns.turn(message.phone):  # what it had today is counted exactly
            await self._deliver(message)

    async def _deliver(self, message: ClaimedMessage) -> None:
        outbound = OutboundSms(
            message_id=f"msg-{message.id}",
            to=message.phone,
            body=message.body,
            status_callback_url=self._callback_url(message.id),
            extra={"order_id": message.order_id, "stage": message.stage},
            provider_templates={
                name: ProviderTemplate(template.code, template.params)
                for name, template in message.templates.items()
            },
        )
        try:
            if message.ambiguous_since is not None and self.lookups:
                found = await find_sent(
                    self.lookups, outbound, since=message.ambiguous_since, now=self.now()
                )
                if found is not None:  # sent already; a delivery it knows of counts too
                    self.log.info(
                        "sms.found_after_timeout", provider=found.provider, status=found.status
                    )
                    await self._sent(message, found)
                    if found.status == "delivered":
                        await self.outbox.record_delivery_status(
                            status="delivered", now=self.now(), message_id=message.id
                        )
                    return
            if await self._held(message):
                return
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
            await self._sent(message, result)

    async def _sent(self, message: ClaimedMessage, result: SendResult) -> None:
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

    async def _held(self, message: ClaimedMessage) -> bool:
        """Hold `message` to the next day when its number had what its stage may use today."""
        if self.daily_limit is None:
            return False
        now = self.now()
        hold = await self.daily_limit.hold(self.outbox, message, now=now)
        if hold is None:
            return False
        await self._record(MessageOutcome("hold", message.id, now, at=hold.until, error=hold.why))
        self.metrics.sms_held.labels(stage=message.stage).inc()
        self.log.info("sms.held", sent_today=hold.sent_today, until=hold.until.isoformat())
        return True

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
            "retry",
            message.id,
            now,
            at=due,
            error=exc.message,
            code=_code(exc.code),
            ambiguous=exc.ambiguous,
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
                await shielded(self._outcomes.enqueue(outcome))
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
