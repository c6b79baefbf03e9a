"""Applying a reloaded config to the campaigns: the part of `dialer.calling.service.
CampaignService` that adds, changes and retires runners (it mixes this in).

Added campaigns start (where this worker holds their slot), changed ones take the new settings
for their next calls, removed ones place no new call and end once their calls have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from dialer.calling.dnc import DncList
from dialer.calling.ports import CampaignRepository, Pbx, PbxError
from dialer.calling.runner import CampaignRunner
from dialer.config import Campaign, Settings
from dialer.logs import get_logger

__all__ = ["ReloadingCampaigns"]

log = get_logger(__name__)


class ReloadingCampaigns:
    """The campaigns' reload (a mixin: the service sets these attributes)."""

    settings: Settings
    runners: dict[str, CampaignRunner]
    retiring: dict[str, CampaignRunner]
    repository: CampaignRepository
    pbx: Pbx
    opened: asyncio.Event
    ready: asyncio.Event
    _runner_tasks: asyncio.TaskGroup | None
    _dnc_list: Callable[[Campaign], DncList | None]
    _runner: Callable[[str, Campaign, DncList | None], CampaignRunner]
    _read_queue_softly: Callable[[CampaignRunner], Awaitable[None]]
    _recover: Callable[[CampaignRunner, list[Any]], Awaitable[None]]
    _start_runner: Callable[[CampaignRunner], None]
    held: Callable[[CampaignRunner], bool]

    async def reload(self, settings: Settings) -> dict[str, list[str]]:
        """Apply a reloaded config's campaigns: added ones start, changed ones take the new
        settings for their next calls, removed ones place no new call and end once their calls
        have. DNC files are read again. Raises (changing nothing) when a DNC file cannot be."""
        wanted = settings.campaigns
        dnc_lists = {name: self._dnc_list(campaign) for name, campaign in wanted.items()}
        self.settings = settings
        added = [name for name in wanted if name not in self.runners]
        removed = [name for name in self.runners if name not in wanted]
        changed = [
            name
            for name, campaign in wanted.items()
            if name in self.runners and campaign != self.runners[name].campaign
        ]
        for name in removed:
            self._retire(self.runners.pop(name))
        for name in wanted:
            if name in self.runners:
                await self._reconfigure(self.runners[name], wanted[name], dnc_lists[name])
        for name in added:
            await self._add(self._runner(name, wanted[name], dnc_lists[name]))
        return {
            "campaigns_added": added,
            "campaigns_changed": changed,
            "campaigns_removed": removed,
        }

    def _retire(self, runner: CampaignRunner) -> None:
        runner.retire()
        self.retiring[runner.name] = runner
        log.info("campaign.removed", campaign=runner.name, calls_in_flight=len(runner.calls))
        if self._runner_tasks is None:  # not dialling yet: nothing to wait for
            self.retiring.pop(runner.name, None)

    async def _reconfigure(
        self, runner: CampaignRunner, campaign: Campaign, dnc: DncList | None
    ) -> None:
        if runner.campaign.kind != campaign.kind and self.opened.is_set():
            await self.repository.ensure_campaign(runner.name, campaign.kind)
        new_queue = runner.reconfigure(campaign, dnc)
        if new_queue is not None and self.ready.is_set():
            await self._read_queue_softly(runner)

    async def _add(self, runner: CampaignRunner) -> None:
        if self.opened.is_set():
            await runner.open()
        if self.ready.is_set() and self.held(runner):
            await self._read_queue_softly(runner)
            try:
                await self._recover(runner, await self.pbx.live_channels())
            except PbxError as exc:  # the next login recovers it with the others
                log.warning("campaign.recovery_failed", campaign=runner.name, reason=str(exc))
        self.runners[runner.name] = runner
        log.info("campaign.added", campaign=runner.name, kind=runner.campaign.kind)
        if self.held(runner):
            self._start_runner(runner)
