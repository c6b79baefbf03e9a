"""Following a campaign's calls to their end and settling them: the part of the runner that
works once a call is placed (`dialer.calling.runner.CampaignRunner` mixes it in).

A call is followed by its own task until it is finished (`dialer.calling.settle.wait_for_end`),
then settled once, shielded from cancellation and written again after a backoff while the store
is unavailable; then its slot goes back to the pacer and the cap is recomputed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from dialer.calling.calls import Call, CallRouter
from dialer.calling.options import RunnerOptions
from dialer.calling.pacing import CallPacer
from dialer.calling.ports import CampaignRepository
from dialer.calling.queues import AgentQueue
from dialer.calling.settle import record_disposition, settle_call, wait_for_end
from dialer.clock import Clock, Sleep
from dialer.config import Campaign
from dialer.health import Guard, StoreUnavailable
from dialer.metrics import Metrics

__all__ = ["FollowingCalls"]


class FollowingCalls:
    """The runner's calls in flight (a mixin: the runner sets these attributes)."""

    name: str
    campaign: Campaign
    repository: CampaignRepository
    router: CallRouter
    pacer: CallPacer
    metrics: Metrics
    guard: Guard
    agent_queue: AgentQueue | None
    calls: dict[str, asyncio.Task[None]]
    log: Any
    _now: Clock
    _timer: Sleep
    _unpaced: set[str]
    options: RunnerOptions
    update_cap: Callable[[], None]
    wake: Callable[[], None]

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
            await wait_for_end(
                call,
                guard_s=self.campaign.ring_timeout_s + self.options.response_margin_s,
                max_call_s=self.options.max_call_s,
                timer=self._timer,
                log=bound,
            )
            while True:  # the outcome must be written: again while the store is unavailable
                try:
                    await asyncio.shield(self._settle(call, bound))
                    break
                except StoreUnavailable as exc:
                    await self.guard.failed(exc)
        finally:
            self.metrics.calls_in_flight.labels(campaign=self.name).dec()
            self.router.forget(call.attempt_id)
            self.calls.pop(call.attempt_id, None)
            if self.agent_queue is not None:
                self.agent_queue.call_ended(call.attempt_id)
            if call.attempt_id in self._unpaced:
                self._unpaced.discard(call.attempt_id)
            else:
                self.pacer.release()
            self.update_cap()
            self.wake()

    async def settle_lost(self, call: Call) -> None:
        """A call the PBX no longer knows (after a restart): settle it as it stands."""
        call.link_lost()
        await self._settle(call, self.log.bind(attempt_id=call.attempt_id))

    async def settle_ended(self, call: Call) -> None:
        """A call that ended while nobody followed it (its end folded from the PBX's record)."""
        await self._settle(call, self.log.bind(attempt_id=call.attempt_id))

    async def _settle(self, call: Call, bound: Any) -> None:
        await settle_call(
            call,
            self.campaign,
            repository=self.repository,
            ended_at=self._now(),
            metrics=self.metrics,
            log=bound,
        )

    async def record_disposition(self, attempt_id: str, event: Mapping[str, str]) -> None:
        await record_disposition(
            attempt_id,
            event,
            self.campaign,
            repository=self.repository,
            now=self._now(),
            log=self.log,
        )
