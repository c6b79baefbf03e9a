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
from dialer.logs import get_logger

__all__ = ["Candidate", "SlotKeeper"]

log = get_logger(__name__)


@dataclass(frozen=True)
class Candidate:
    """A campaign of this worker's config, as the slots see it."""

    name: str
    campaign_id: int
    pbx: str | None = None
    """The campaign's `pbx:`; None: any worker's."""
    agent_queue: str | None = None


@dataclass
class SlotKeeper:
    slots: RunnerSlots
    worker_id: str
    pbx: str

    def may_run(self, campaign: Candidate) -> bool:
        return campaign.pbx is None or campaign.pbx == self.pbx

    async def claim(self, campaigns: Sequence[Candidate], held: set[str]) -> list[str]:
        """Claim slots up to this worker's share; the campaigns newly held. (A unit of the
        share is an agent queue, or a campaign without one.)"""
        eligible = [campaign for campaign in campaigns if self.may_run(campaign)]
        if not eligible:
            return []
        workers = max(1, len(await self.slots.live_workers("campaigns")))
        share = math.ceil(len({_unit(campaign) for campaign in eligible}) / workers)
        units_held = {_unit(campaign) for campaign in eligible if campaign.name in held}
        newly: list[str] = []
        for campaign in sorted(eligible, key=lambda campaign: campaign.name):
            if campaign.name in held:
                continue
            if _unit(campaign) not in units_held and len(units_held) >= share:
                continue
            if await self.slots.claim(self._request(campaign)):
                newly.append(campaign.name)
                units_held.add(_unit(campaign))
                log.info("campaign.slot_claimed", campaign=campaign.name, worker_id=self.worker_id)
        return newly

    def _request(self, campaign: Candidate) -> SlotRequest:
        return SlotRequest(
            campaign=campaign.name,
            campaign_id=campaign.campaign_id,
            owner=self.worker_id,
            pbx=self.pbx,
            agent_queue=campaign.agent_queue,
        )


def _unit(campaign: Candidate) -> str:
    if campaign.agent_queue is not None:
        return f"queue {campaign.agent_queue}"
    return f"campaign {campaign.name}"
