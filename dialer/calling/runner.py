"""The campaign runner: one per campaign, dialling its due contacts within its limits.

For each contact (`run()` forever, `run_until_idle()` in tests: until nothing is due and no call
is up), in priority order:

1. take it from the repository (a lease: pending -> dialling; `dialer.calling.ports`);
2. at this moment, check the calling window in the contact's zone (closed: back to pending at
   the next opening), the allowed countries, the DNC list and call opt-outs (refused:
   cancelled, with the reason);
3. wait for a pacer slot (concurrency and calls-per-second caps; a VIP campaign's concurrency
   is also held to its free agents, see `dialer.calling.queues`), re-check pause and window;
4. write the attempt row (attempt id = ActionID = ChannelId), then send the Originate;
5. follow the call's events (`dialer.calling.calls`) until it is finished; no
   OriginateResponse within the ring time-out plus a margin settles it as `unknown`;
6. settle it (`dialer.calling.settle`): its outcome, disposition and the contact's next step.

Clock, sleep and the guard timer are injected, so tests run in virtual time.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from dialer.calling.admission import Admission
from dialer.calling.agent_pacing import AgentPacing
from dialer.calling.backoff import RefusalBackoff
from dialer.calling.calls import Call, CallRouter
from dialer.calling.dnc import DncList
from dialer.calling.following import FollowingCalls
from dialer.calling.options import RunnerOptions
from dialer.calling.originate import originate_request
from dialer.calling.pacing import CallPacer
from dialer.calling.ports import (
    CampaignRepository,
    DueContact,
    Pbx,
    PbxNotSent,
    PbxRefused,
)
from dialer.calling.queues import AgentQueue
from dialer.clock import Clock, Sleep
from dialer.config import Campaign
from dialer.health import Health
from dialer.logs import bind_context, get_logger, unbind_context
from dialer.metrics import Metrics

log = get_logger(__name__)


class CampaignRunner(AgentPacing, FollowingCalls):
    def __init__(
        self,
        name: str,
        campaign: Campaign,
        *,
        repository: CampaignRepository,
        pbx: Pbx,
        router: CallRouter,
        now: Clock,
        sleep: Sleep = asyncio.sleep,
        timer: Sleep = asyncio.sleep,
        dnc: DncList | None = None,
        options: RunnerOptions | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
    ) -> None:
        self.name = name
        self.guard = (health or Health(now=now)).guard(f"campaign:{name}", sleep)
        self.metrics = metrics or Metrics()
        self.campaign = campaign
        self.repository = repository
        self.pbx = pbx
        self.router = router
        self.options = options or RunnerOptions()
        self.admission = Admission(
            campaign,
            dnc or DncList.empty(),
            repository=repository,
            now=now,
            default_region=self.options.default_region,
            log=log.bind(campaign=name),
        )
        self._now = now
        self._timer = timer
        self._sleep = sleep
        self.routed_to_queue = campaign.answer_route().queue is not None
        self.pacer = CallPacer(
            campaign.max_calls_per_second,
            campaign.max_concurrent_calls,
            clock=lambda: self._now().timestamp(),
            sleep=sleep,
        )
        self.refusals = RefusalBackoff(
            self.options.refused_backoff_initial_s, self.options.refused_backoff_max_s
        )
        self._unpaced: set[str] = set()
        self.holding: set[int] = set()  # contact ids claimed whose attempt is not written yet
        self._wake = asyncio.Event()
        self._retired = False
        self.log = log.bind(campaign=name)
        self.agent_queue = self._agent_queue_for(campaign)
        self.outbound = self._outbound_for(campaign)
        self.update_cap()
        self.campaign_id = 0
        self.paused = False
        self.calls: dict[str, asyncio.Task[None]] = {}

    def _agent_queue_for(self, campaign: Campaign) -> AgentQueue | None:
        """The queue whose free agents gate this campaign's dialling, if its kind says so."""
        if campaign.free_agent_queue is None:
            return None
        return AgentQueue(campaign.free_agent_queue, on_change=self.update_cap)

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        self.campaign_id = await self.repository.ensure_campaign(self.name, self.campaign.kind)
        self.paused = await self.repository.campaign_state(self.campaign_id) == "paused"
        await self.read_abandon_history(self.repository, self.campaign_id)

    async def set_paused(self, paused: bool) -> None:
        await self.repository.set_campaign_state(
            self.campaign_id, "paused" if paused else "running", self._now()
        )
        self.paused = paused
        self.log.info("campaign.paused" if paused else "campaign.resumed")
        self.wake()

    async def refresh_state(self) -> None:
        """Read the pause state again: another worker's API may have changed it."""
        paused = await self.repository.campaign_state(self.campaign_id) == "paused"
        if paused != self.paused:
            self.paused = paused
            self.log.info("campaign.paused" if paused else "campaign.resumed", by="another worker")
            self.wake()

    def reconfigure(self, campaign: Campaign, dnc: DncList | None) -> AgentQueue | None:
        """A reloaded config, for the next calls; calls in flight go on as they were placed.

        Returns the new agent queue when the campaign now reads another one (the caller routes
        its events here and reads its members), else None."""
        queue_before = self.agent_queue.name if self.agent_queue is not None else None
        self.campaign = campaign
        self.admission = Admission(
            campaign,
            dnc or DncList.empty(),
            repository=self.repository,
            now=self._now,
            default_region=self.options.default_region,
            log=self.log,
        )
        self.routed_to_queue = campaign.answer_route().queue is not None
        self.pacer.set_max_calls_per_second(campaign.max_calls_per_second)
        queue_after = campaign.free_agent_queue
        new_queue = None
        if queue_after != queue_before:
            self.agent_queue = new_queue = self._agent_queue_for(campaign)
        self._reconfigure_outbound(campaign, queue_changed=new_queue is not None)
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
        a restart). A campaign that dials per free agent is also held to the agents free for
        it: free ones, plus those its own calls are engaged with or waiting for."""
        allowed = self.campaign.max_concurrent_calls
        if self.agent_queue is not None and self.outbound is None:
            ours = [
                call.attempt_id for call in self.router.calls.values() if call.campaign == self.name
            ]
            held = self.agent_queue.engaged(ours) + self.agent_queue.waiting_unassigned(ours)
            allowed = min(allowed, self.agent_queue.free_agents + held)
        allowed = max(0, allowed - len(self._unpaced))
        if allowed != self.pacer.max_concurrent:
            self.pacer.set_max_concurrent(allowed)
            self.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Dial until `stop`, then let the calls in flight finish. A failure of the store never
        ends the loop: it is reported to `health`, and the loop waits its backoff and goes on."""
        ticking = None
        if self.outbound is not None:
            ticking = asyncio.get_running_loop().create_task(self._tick())
        try:
            while not self._stopping(stop):
                if self.paused or not self.campaign.enabled or not self.pbx.logged_in:
                    await self._idle(self.options.idle_poll_s, stop)
                    continue
                try:
                    if self.guard.failing:  # contacts claimed when the store failed: due again
                        await self.repository.release_orphans(
                            self.campaign_id,
                            owner=self.options.worker_id,
                            now=self._now(),
                            keep=self.holding,
                        )
                    done = await self._dial_next(stop)
                    wait_s = await self._idle_for() if done == "idle" else None
                except Exception as exc:
                    await self.guard.failed(exc)
                    continue
                self.guard.worked()
                if wait_s is not None:
                    await self._idle(wait_s, stop)
        finally:
            if ticking is not None:
                ticking.cancel()
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
        if self.refusals.until is not None and self.refusals.holding(self._now()):
            return max(0.05, (self.refusals.until - self._now()).total_seconds())
        due = await self.repository.next_due_at(self.campaign_id)
        if due is None:
            return self.options.idle_poll_s
        return min(self.options.idle_poll_s, max(0.05, (due - self._now()).total_seconds()))

    # -- one contact ---------------------------------------------------------------------------

    async def _dial_next(self, stop: asyncio.Event) -> str:
        now = self._now()
        if self.refusals.holding(now):
            return "idle"
        contact = await self.repository.claim_next(
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
        if await self.admission.window_closed(contact) or await self.admission.refused(contact):
            return "handled"
        outbound = self.outbound
        if outbound is not None and not await self._permit(outbound, stop):
            await self.repository.put_back(contact.id, due_at=self._now(), now=self._now())
            return "handled"
        handed_over = False
        try:
            await self.pacer.take_slot()  # the CPS turn comes right before the Originate
        except BaseException:
            if outbound is not None:
                outbound.placed(sent=False)
            raise
        try:
            if self.paused or self._stopping(stop):
                why = "campaign_paused" if self.paused else "stopping"
                await self.repository.put_back(
                    contact.id, due_at=self._now(), now=self._now(), reason=why
                )
                return "handled"
            if await self.admission.window_closed(contact):
                return "handled"
            handed_over = await self._place(contact)
            return "started"
        finally:
            if not handed_over:
                self.pacer.release()
            if outbound is not None:
                outbound.placed(sent=handed_over)

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
            on_change=self._call_changed,
        )
        await self.repository.start_attempt(contact, attempt_id=attempt_id, now=now)
        try:
            await self.pacer.turn()  # after the write: the PBX sees the starts spaced
        except asyncio.CancelledError:  # stopped meanwhile: no Originate, so no attempt
            await asyncio.shield(
                self.repository.withdraw_attempt(attempt_id, contact.id, due_at=now, now=now)
            )
            raise
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
        except PbxNotSent as exc:  # certainly not sent
            self.router.forget(attempt_id)
            due_at = self._now() + timedelta(seconds=self.options.not_sent_retry_s)
            await self.repository.withdraw_attempt(attempt_id, contact.id, due_at=due_at, now=now)
            self.log.warning("call.originate_not_sent", attempt_id=attempt_id, reason=str(exc))
            return False
        except PbxRefused as exc:  # not placed: not an attempt; wait while the PBX refuses
            self.router.forget(attempt_id)
            delay_s = self.refusals.refused(self._now(), exc.message)
            due_at = self._now() + timedelta(seconds=delay_s)
            await self.repository.withdraw_attempt(attempt_id, contact.id, due_at=due_at, now=now)
            self.metrics.calls_refused.labels(campaign=self.name).inc()
            self.log.warning(
                "call.originate_refused",
                attempt_id=attempt_id,
                reason=exc.message,
                retry_in_s=delay_s,
            )
            return False
        except Exception as exc:  # PbxUnconfirmed (or a bug) after sending: follow it anyway
            self.log.warning("call.originate_unconfirmed", attempt_id=attempt_id, reason=str(exc))
        finally:
            unbind_context("campaign", "attempt_id", "contact_id")
        self.refusals.cleared()
        self.metrics.calls_originated.labels(campaign=self.name).inc()
        self.metrics.calls_in_flight.labels(campaign=self.name).inc()
        task = asyncio.get_running_loop().create_task(self._follow(call))
        self.calls[attempt_id] = task
        return True
