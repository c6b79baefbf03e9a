"""The campaign runner: one per campaign, dialling its due contacts within its limits.

For each contact (`run()` forever, `run_until_idle()` in tests: until nothing is due and no call
is up), in priority order:

1. take it from the store (a lease: pending -> dialling; `campaign_store`);
2. at this moment, check the calling window in the contact's zone (closed: back to pending at
   the next opening), the allowed countries, the DNC list and call opt-outs (refused:
   cancelled, with the reason);
3. wait for a pacer slot (concurrency and calls-per-second caps; a VIP campaign's concurrency
   is also held to its free agents, see `dialer.queues`), re-check pause and window;
4. write the attempt row (attempt id = ActionID = ChannelId), then send the Originate;
5. follow the call's events (`dialer.calls`) until it is finished; no OriginateResponse within
   the ring time-out plus a margin settles it as `unknown`;
6. classify it (`dialer.outcomes`) and settle it: outcome, disposition and the contact's next
   step (`dialer.campaign_rules.next_step`) in one transaction.

Clock, sleep and the guard timer are injected, so tests run in virtual time.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.ami import AmiActionFailed, AmiNotConnected, LinkState, OriginateRequest, UnsafeHeader
from dialer.calls import Call, CallRouter
from dialer.campaign_rules import (
    NextStep,
    disposition_from,
    next_step,
    originate_request,
    refusal_reason,
)
from dialer.campaign_store import CampaignStore, DueContact, Settlement
from dialer.config import Campaign, QueueDestination, VipCampaign
from dialer.dnc import DncList
from dialer.logs import bind_context, get_logger, unbind_context
from dialer.metrics import Metrics
from dialer.outcomes import Outcome, classify
from dialer.pacing import CallPacer
from dialer.phones import InvalidNumber, parse
from dialer.queues import AgentQueue
from dialer.windows import CallingWindows, is_open, next_open

log = get_logger(__name__)

Sleep = Callable[[float], Awaitable[object]]


class Pbx(Protocol):
    """What the runner needs of the AMI client (`dialer.ami.AmiClient`; tests use a fake)."""

    @property
    def link(self) -> LinkState: ...

    async def wait_logged_in(self, timeout_s: float | None = None) -> None: ...

    async def originate(self, request: OriginateRequest) -> None: ...

    async def send(
        self, action: Any, *, timeout_s: float | None = None, as_list: bool | None = None
    ) -> Any: ...


@dataclass(frozen=True)
class RunnerOptions:
    worker_id: str = "worker"
    """Lease owner: the same id after a restart lets the worker settle its own calls at once."""
    lease_s: float = 600.0
    idle_poll_s: float = 5.0
    response_margin_s: float = 15.0
    """OriginateResponse due within ring_timeout_s + this, or the attempt is `unknown`."""
    max_call_s: float = 4 * 3600.0
    not_sent_retry_s: float = 30.0
    default_region: str = "CN"


class CampaignRunner:
    def __init__(
        self,
        name: str,
        campaign: Campaign,
        *,
        store: CampaignStore,
        pbx: Pbx,
        router: CallRouter,
        now: Callable[[], datetime],
        sleep: Sleep = asyncio.sleep,
        timer: Sleep = asyncio.sleep,
        dnc: DncList | None = None,
        options: RunnerOptions | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.name = name
        self.metrics = metrics or Metrics()
        self.campaign = campaign
        self.store = store
        self.pbx = pbx
        self.router = router
        self.options = options or RunnerOptions()
        self.dnc = dnc or DncList.empty()
        self._now = now
        self._timer = timer
        self._sleep = sleep
        self.windows = CallingWindows.from_config(campaign.calling_windows, campaign.holidays)
        self.routed_to_queue = isinstance(campaign.destination, QueueDestination)
        self.pacer = CallPacer(
            campaign.max_calls_per_second,
            campaign.max_concurrent_calls,
            clock=lambda: self._now().timestamp(),
            sleep=sleep,
        )
        self._unpaced: set[str] = set()
        self.holding: set[int] = set()  # contact ids claimed whose attempt is not written yet
        self._wake = asyncio.Event()
        self._retired = False
        self.log = log.bind(campaign=name)
        self.agent_queue = self._agent_queue_for(campaign)
        self.update_cap()
        self.campaign_id = 0
        self.paused = False
        self.calls: dict[str, asyncio.Task[None]] = {}

    def _agent_queue_for(self, campaign: Campaign) -> AgentQueue | None:
        if not isinstance(campaign, VipCampaign):
            return None
        return AgentQueue(campaign.agent_queue, on_change=self.update_cap)

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        self.campaign_id = await self.store.ensure_campaign(self.name, self.campaign.kind)
        self.paused = await self.store.campaign_state(self.campaign_id) == "paused"

    async def set_paused(self, paused: bool) -> None:
        await self.store.set_campaign_state(
            self.campaign_id, "paused" if paused else "running", self._now()
        )
        self.paused = paused
        self.log.info("campaign.paused" if paused else "campaign.resumed")
        self.wake()

    def reconfigure(self, campaign: Campaign, dnc: DncList | None) -> AgentQueue | None:
        """A reloaded config, for the next calls; calls in flight go on as they were placed.

        Returns the new agent queue when the campaign now reads another one (the caller routes
        its events here and reads its members), else None."""
        queue_before = self.agent_queue.name if self.agent_queue is not None else None
        self.campaign = campaign
        self.dnc = dnc or DncList.empty()
        self.windows = CallingWindows.from_config(campaign.calling_windows, campaign.holidays)
        self.routed_to_queue = isinstance(campaign.destination, QueueDestination)
        self.pacer.set_max_calls_per_second(campaign.max_calls_per_second)
        queue_after = campaign.agent_queue if isinstance(campaign, VipCampaign) else None
        new_queue = None
        if queue_after != queue_before:
            self.agent_queue = new_queue = self._agent_queue_for(campaign)
        self.update_cap()
        self.wake()
        return new_queue

    def retire(self) -> None:
        """The campaign left the config: place no new call; `run` returns once calls end."""
        self._retired = True
        self.wake()

    def _stopping(self, stop: asyncio.Event) -> bool:
        return stop.is_set() or self._retired

    def wake(self) -> None:
        """Look for due contacts now (new contacts, resumed, agents freed)."""
        self._wake.set()

    def update_cap(self) -> None:
        """Concurrency cap: the campaign's, less calls followed without a slot (recovered after
        a restart); a VIP campaign's is also held to free agents plus the calls they have."""
        allowed = self.campaign.max_concurrent_calls
        if self.agent_queue is not None:
            with_agent = sum(
                1
                for call in self.router.calls.values()
                if call.campaign == self.name and call.with_agent
            )
            allowed = min(allowed, self.agent_queue.free_agents + with_agent)
        allowed = max(0, allowed - len(self._unpaced))
        if allowed != self.pacer.max_concurrent:
            self.pacer.set_max_concurrent(allowed)
            self.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until `stop`, then let the calls in flight finish."""
        try:
            while not self._stopping(stop):
                if self.paused or not self.campaign.enabled or not self.pbx.link.logged_in:
                    await self._idle(self.options.idle_poll_s, stop)
                    continue
                done = await self._dial_next(stop)
                if done == "idle":
                    await self._idle(await self._idle_for(), stop)
        finally:
            if self.calls:
                await asyncio.wait(list(self.calls.values()))

    async def run_until_idle(self) -> None:
        """Burst mode (tests): dial until nothing is due and no call is up, then return."""
        never = asyncio.Event()
        while True:
            done = "idle"
            if not self.paused and self.campaign.enabled:
                done = await self._dial_next(never)
            if done == "idle":
                if not self.calls:
                    return
                await asyncio.wait(list(self.calls.values()), return_when=asyncio.FIRST_COMPLETED)

    async def _idle(self, seconds: float, stop: asyncio.Event) -> None:
        self._wake.clear()
        waits = [
            asyncio.ensure_future(self._wake.wait()),
            asyncio.ensure_future(stop.wait()),
            asyncio.ensure_future(self._sleep(seconds)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def _idle_for(self) -> float:
        due = await self.store.next_due_at(self.campaign_id)
        if due is None:
            return self.options.idle_poll_s
        return min(self.options.idle_poll_s, max(0.05, (due - self._now()).total_seconds()))

    # -- one contact ---------------------------------------------------------------------------

    def _zone(self, contact: DueContact) -> ZoneInfo:
        if contact.timezone:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(contact.timezone)
        return self.campaign.zone

    async def _window_closed(self, contact: DueContact) -> bool:
        now = self._now()
        zone = self._zone(contact)
        if is_open(self.windows, now, zone):
            return False
        due_at = next_open(self.windows, now, zone) or now + timedelta(days=1)
        await self.store.put_back(contact.id, due_at=due_at, now=now)
        self.log.info("contact.deferred", contact_id=contact.id, due_at=due_at.isoformat())
        return True

    async def _refused(self, contact: DueContact) -> bool:
        try:
            region = parse(contact.phone, self.options.default_region).region
        except InvalidNumber:
            region = None
        reason = refusal_reason(
            region=region,
            allowed_countries=self.campaign.allowed_countries,
            on_dnc_list=self.dnc.contains(contact.phone),
            opted_out=await self.store.is_opted_out(contact.phone),
        )
        if reason is None:
            return False
        await self.store.cancel(contact.id, reason=reason, now=self._now())
        self.log.info("contact.cancelled", contact_id=contact.id, reason=reason)
        return True

    async def _dial_next(self, stop: asyncio.Event) -> str:
        now = self._now()
        contact = await self.store.claim_next(
            self.campaign_id, owner=self.options.worker_id, now=now, lease_s=self.options.lease_s
        )
        if contact is None:
            return "idle"
        # Leased and `dialling` but no attempt row yet: recovery after a reconnect must not
        # take it for an orphan of a crash and release it (it would be dialled twice).
        self.holding.add(contact.id)
        try:
            return await self._dial_claimed(contact, stop)
        finally:
            self.holding.discard(contact.id)

    async def _dial_claimed(self, contact: DueContact, stop: asyncio.Event) -> str:
        if await self._window_closed(contact) or await self._refused(contact):
            return "handled"
        await self.pacer.acquire()
        handed_over = False
        try:
            if self.paused or self._stopping(stop):
                await self.store.put_back(contact.id, due_at=self._now(), now=self._now())
                return "handled"
            if await self._window_closed(contact):
                return "handled"
            handed_over = await self._place(contact)
            return "started"
        finally:
            if not handed_over:
                self.pacer.release()

    async def _place(self, contact: DueContact) -> bool:
        """Write the attempt, send the Originate; True when a task now follows the call."""
        attempt_id = uuid.uuid4().hex
        now = self._now()
        call = Call(
            attempt_id=attempt_id,
            campaign=self.name,
            contact_id=contact.id,
            phone=contact.phone,
            started_at=now,
            routed_to_queue=self.routed_to_queue,
            on_change=lambda _: self.update_cap(),
        )
        await self.store.start_attempt(contact, attempt_id=attempt_id, now=now)
        self.router.track(call)
        bind_context(campaign=self.name, attempt_id=attempt_id, contact_id=contact.id)
        try:
            await self.pbx.originate(
                originate_request(
                    self.name,
                    self.campaign,
                    call.attempt_id,
                    phone=contact.phone,
                    contact_context=contact.context,
                )
            )
        except (AmiNotConnected, UnsafeHeader) as exc:  # certainly not sent
            self.router.forget(attempt_id)
            due_at = self._now() + timedelta(seconds=self.options.not_sent_retry_s)
            await self.store.withdraw_attempt(attempt_id, contact.id, due_at=due_at, now=now)
            self.log.warning("call.originate_not_sent", attempt_id=attempt_id, reason=str(exc))
            return False
        except AmiActionFailed as exc:
            self.log.warning("call.originate_refused", attempt_id=attempt_id, reason=exc.message)
            call.observation = replace(call.observation, originate_response="Failure")
            call.finished.set()
        except Exception as exc:  # timed out or link lost after sending: follow it anyway
            self.log.warning("call.originate_unconfirmed", attempt_id=attempt_id, reason=str(exc))
        finally:
            unbind_context("campaign", "attempt_id", "contact_id")
        self.metrics.calls_originated.labels(campaign=self.name).inc()
        self.metrics.calls_in_flight.labels(campaign=self.name).inc()
        task = asyncio.get_running_loop().create_task(self._follow(call))
        self.calls[attempt_id] = task
        return True

    # -- following and settling ----------------------------------------------------------------

    def follow(self, call: Call) -> None:
        """Follow a call placed before a restart and still up; it counts against the cap."""
        self.router.track(call)
        self._unpaced.add(call.attempt_id)
        self.update_cap()
        self.metrics.calls_in_flight.labels(campaign=self.name).inc()
        self.calls[call.attempt_id] = asyncio.get_running_loop().create_task(self._follow(call))

    async def _follow(self, call: Call) -> None:
        bound = self.log.bind(attempt_id=call.attempt_id, contact_id=call.contact_id)
        try:
            guard_s = self.campaign.ring_timeout_s + self.options.response_margin_s
            if not await self._within(call.responded, guard_s, call):
                bound.warning("call.response_missing", waited_s=guard_s)
                call.link_lost()
                call.finished.set()
            if call.answered.is_set():
                bound.info("call.answered")
            await self._within(call.finished, self.options.max_call_s, call)
            await asyncio.shield(self._settle(call, bound))
        finally:
            self.metrics.calls_in_flight.labels(campaign=self.name).dec()
            self.router.forget(call.attempt_id)
            self.calls.pop(call.attempt_id, None)
            if call.attempt_id in self._unpaced:
                self._unpaced.discard(call.attempt_id)
            else:
                self.pacer.release()
            self.update_cap()
            self.wake()

    async def _within(self, event: asyncio.Event, seconds: float, call: Call) -> bool:
        """Wait for `event` (or the call's end) at most `seconds` on the injected timer."""
        if event.is_set() or call.finished.is_set():
            return event.is_set()
        waits = [
            asyncio.ensure_future(event.wait()),
            asyncio.ensure_future(call.finished.wait()),
            asyncio.ensure_future(self._timer(seconds)),
        ]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
        return event.is_set()

    async def settle_lost(self, call: Call) -> None:
        """A call the PBX no longer knows (after a restart): settle it as it stands."""
        call.link_lost()
        await self._settle(call, self.log.bind(attempt_id=call.attempt_id))

    async def _settle(self, call: Call, bound: Any) -> None:
        observation = call.observation
        outcome = classify(observation, routed_to_queue=call.routed_to_queue)
        ended_at = self._now()
        duration_s = (
            round((ended_at - call.answered_at).total_seconds(), 3) if call.answered_at else 0.0
        )
        causes = [c for c in (observation.other_channel_cause, observation.channel_cause) if c]
        settlement = Settlement(
            attempt_id=call.attempt_id,
            outcome=outcome,
            ended_at=ended_at,
            answered_at=call.answered_at,
            reason_code=observation.reason,
            dial_status=observation.dial_status,
            hangup_cause=causes[0] if causes else observation.channel_cause,
            duration_s=duration_s,
        )
        settled = await self.store.settle(settlement, self._decide)
        if settled is None:
            return
        bound.info("call.finished", outcome=outcome.value, duration_s=duration_s)
        self.metrics.call_finished(self.name, outcome.value)
        if settled.step.state == "pending" and settled.next_attempt_at is not None:
            bound.info(
                "call.retry_scheduled",
                outcome=outcome.value,
                delay_s=settled.step.delay_s,
                next_attempt_at=settled.next_attempt_at.isoformat(),
            )
        else:
            bound.info(
                "contact.finished",
                state=settled.step.state,
                why=settled.step.why,
                disposition=settled.disposition,
            )

    def _decide(
        self, outcome: Outcome, disposition: str | None, with_outcome: int, total: int
    ) -> NextStep:
        return next_step(
            outcome,
            disposition=disposition,
            attempts_with_outcome=with_outcome,
            attempts_total=total,
            retry=self.campaign.retry,
            max_total_attempts=self.campaign.max_total_attempts,
        )

    async def record_disposition(self, attempt_id: str, event: Any) -> None:
        dispositions = getattr(self.campaign, "dispositions", {})
        disposition = disposition_from(event, dispositions)
        if await self.store.record_disposition(attempt_id, disposition, self._now()):
            self.log.info(
                "call.disposition_recorded", attempt_id=attempt_id, disposition=disposition
            )
