"""The part of the campaign runner that paces an outbound campaign per agent: the agent queue's
events, decisions and the once-a-second tick (`dialer.calling.outbound`;
`dialer.calling.runner.CampaignRunner` mixes it in)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from dialer.calling.calls import Call, CallRouter
from dialer.calling.outbound import OutboundPacing, callers_waiting
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
