"""The part of the campaign runner that paces an outbound campaign per agent: the agent queue's
events, decisions and the once-a-second tick (`dialer.calling.outbound`;
`dialer.calling.runner.CampaignRunner` mixes it in)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from dialer.calling.calls import Call, CallRouter
from dialer.calling.outbound import OutboundPacing, callers_waiting
from dialer.calling.ports import CampaignRepository
from dialer.calling.queues import AgentQueue
from dialer.clock import Clock, Sleep
from dialer.config import Campaign
from dialer.metrics import Metrics

__all__ = ["AgentPacing"]


class AgentPacing:
    """The runner's outbound pacing (a mixin: the runner sets these attributes)."""

    name: str
    router: CallRouter
    agent_queue: AgentQueue | None
    outbound: OutboundPacing | None
    log: Any
    _now: Clock
    _sleep: Sleep
    update_cap: Callable[[], None]
    metrics: Metrics

    def _outbound_for(self, campaign: Campaign) -> OutboundPacing | None:
        """Permits from the campaign's pacer, for a kind that paces per agent (outbound)."""
        rule = campaign.pacing_rule()
        if rule is None or self.agent_queue is None:
            return None
        clock = lambda: self._now().timestamp()  # noqa: E731
        return OutboundPacing(rule, self.agent_queue.name, clock=clock, log=self.log)

    # -- the agent queue's events (`dialer.calling.queues`, `dialer.calling.agent_ledger`) ----

    def _reconfigure_outbound(self, campaign: Campaign, queue_changed: bool) -> None:
        """A reloaded config: the pacing changed in place (a runner waiting for a permit keeps
        waiting on the same one); a new agent queue starts a new ledger."""
        if self.outbound is None or queue_changed or campaign.pacing_rule() is None:
            self.outbound = self._outbound_for(campaign)
            return
        rule = campaign.pacing_rule()
        if rule is not None:
            self.outbound.reconfigure(rule)

    async def _permit(self, outbound: OutboundPacing, stop: asyncio.Event) -> bool:
        """Wait for a pacing permit; False when `stop` came first (nothing taken)."""
        permit = asyncio.ensure_future(outbound.take_permit())
        stopped = asyncio.ensure_future(stop.wait())
        await asyncio.wait([permit, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if permit.done():
            return True
        permit.cancel()
        return False

    async def read_abandon_history(self, repository: CampaignRepository, campaign_id: int) -> None:
        """The abandon rule's window as the store has it (after a restart, the rate goes on)."""
        outbound = self.outbound
        if outbound is None:
            return
        now = self._now()
        since = now - timedelta(seconds=outbound.rule.abandon_window_s)
        rows = await repository.answered_since(
            campaign_id, since, abandon_after_s=outbound.rule.abandon_after_s
        )
        for answered_at, abandoned in rows:
            outbound.guard.observe_answered(abandoned=abandoned, at_s=answered_at.timestamp())
        rate = outbound.guard.abandon_rate(now.timestamp())
        self.log.info("campaign.abandon_history_read", answered=len(rows), abandon_rate=rate)

    def queue_event(self, event: Mapping[str, str]) -> None:
        if self.agent_queue is not None:
            self.agent_queue.handle(event)
        if self.outbound is not None:
            self.outbound.ledger.handle(event)
            if event.get("Event") in ("AgentComplete", "QueueCallerAbandon"):
                self.decide()

    def reset_queue(self, items: list[Mapping[str, str]]) -> None:
        if self.agent_queue is not None:
            self.agent_queue.reset(items)
        if self.outbound is not None:
            self.outbound.ledger.reset(items)
            self.decide()

    def forget_queue(self) -> None:
        if self.agent_queue is not None:
            self.agent_queue.forget()
        if self.outbound is not None:
            self.outbound.ledger.forget()

    def decide(self, *, tick: bool = False) -> None:
        """Outbound: ask the pacer for permits now (`dialer.calling.outbound`)."""
        if self.outbound is None or self.agent_queue is None:
            return
        queue = self.agent_queue
        calls = [call for call in self.router.calls.values() if call.campaign == self.name]
        waiting = callers_waiting(queue.waiting, queue.engagements.keys())
        if tick:
            self.outbound.tick(calls, waiting)
        else:
            self.outbound.decide(calls, waiting)

    def _call_changed(self, call: Call) -> None:
        if self.outbound is not None and self.outbound.call_changed(call):
            self.decide()
        self.update_cap()

    async def _tick(self) -> None:
        """Once a second until cancelled (also while stopping: a claimed contact waiting for a
        permit gets one and is put back); the agent measures' gauges every 5 s."""
        ticks = 0
        while True:
            await self._sleep(1.0)
            self.decide(tick=True)
            ticks += 1
            if ticks % 5 == 0 and self.outbound is not None:
                self.metrics.set_agent_measures(self.name, self.outbound.measures())
