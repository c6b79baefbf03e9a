"""Which campaigns this worker runs, when several workers share the store.

Every worker builds a runner for each campaign of its config, but dials only those whose
runner slot it holds (`dialer.calling.ports.RunnerSlots`). At each heartbeat it claims slots
up to its share: the campaigns it may run (`pbx:` unset or its own PBX) divided by the live
workers playing `campaigns`, rounded up, so three workers starting together split the
campaigns. A slot is never taken from a live worker; a dead worker's slots are claimed by the
others at their next heartbeat. Campaigns of an agent queue this worker already dials for are
always claimed with it (they cannot run elsewhere) and do not count against the share.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from dialer.calling.ports import RunnerSlots, SlotRequest
from dialer.calling.runner import CampaignRunner
from dialer.logs import get_logger

__all__ = ["SlotKeeper"]

log = get_logger(__name__)


@dataclass
class SlotKeeper:
    slots: RunnerSlots
    worker_id: str
    pbx: str

    def may_run(self, runner: CampaignRunner) -> bool:
        wanted = runner.campaign.pbx
        return wanted is None or wanted == self.pbx

    async def claim(
        self, runners: Sequence[CampaignRunner], held: set[str]
    ) -> list[CampaignRunner]:
        """Claim slots up to this worker's share; the runners newly held. (A unit of the share
        is an agent queue, or a campaign without one.)"""
        eligible = [runner for runner in runners if self.may_run(runner)]
        if not eligible:
            return []
        workers = max(1, len(await self.slots.live_workers("campaigns")))
        share = math.ceil(len({_unit(runner) for runner in eligible}) / workers)
        units_held = {_unit(runner) for runner in eligible if runner.name in held}
        newly: list[CampaignRunner] = []
        for runner in sorted(eligible, key=lambda runner: runner.name):
            if runner.name in held:
                continue
            if _unit(runner) not in units_held and len(units_held) >= share:
                continue
            if await self.slots.claim(self._request(runner)):
                newly.append(runner)
                units_held.add(_unit(runner))
                log.info("campaign.slot_claimed", campaign=runner.name, worker_id=self.worker_id)
        return newly

    def _request(self, runner: CampaignRunner) -> SlotRequest:
        return SlotRequest(
            campaign=runner.name,
            campaign_id=runner.campaign_id,
            owner=self.worker_id,
            pbx=self.pbx,
            agent_queue=runner.agent_queue.name if runner.agent_queue is not None else None,
        )


def _unit(runner: CampaignRunner) -> str:
    queue = runner.agent_queue
    return f"queue {queue.name}" if queue is not None else f"campaign {runner.name}"
