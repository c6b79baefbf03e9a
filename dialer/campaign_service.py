"""The campaigns component: every campaign runner, the shared AMI event router, recovery.

- One `CallRouter` handles the AMI events of every campaign's calls (`dialer.calls`).
- At start, once AMI is logged in, each runner recovers: attempts left without an outcome (the
  daemon died, also by `kill -9`) are followed on if the PBX still has their channel
  (`CoreShowChannels`, matched by Linkedid = attempt id), else settled as `unknown` and retried
  by their rule; contacts left `dialling` without an attempt are pending again. Then it dials.
- When the AMI link drops, every call in flight is marked (`observe_link_lost`) and VIP queues
  forget their agents (no call is placed meanwhile anyway). After the next login, calls the PBX
  still has are followed on; the others end and are settled as they stand (`unknown` unless
  the events already proved an outcome); queues are read again.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dialer.ami import AmiError, LinkState
from dialer.calls import Call, CallRouter
from dialer.campaign_store import AttemptRow, CampaignStore
from dialer.campaigns import CampaignRunner, Pbx, RunnerOptions, Sleep
from dialer.config import Campaign, Settings
from dialer.dnc import DncList
from dialer.logs import get_logger, mask_phone
from dialer.metrics import Metrics

log = get_logger(__name__)

__all__ = ["CampaignService", "LiveChannel"]


@dataclass(frozen=True)
class LiveChannel:
    uniqueid: str
    linkedid: str
    up: bool


class CampaignService:
    """Holds the runners; `run(stop)` is the daemon component's long-running task."""

    name = "campaigns"

    def __init__(
        self,
        settings: Settings,
        store: CampaignStore,
        pbx: Pbx,
        *,
        now: Callable[[], datetime],
        sleep: Sleep = asyncio.sleep,
        timer: Sleep = asyncio.sleep,
        options: RunnerOptions | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.store = store
        self.pbx = pbx
        self.now = now
        self.options = options or RunnerOptions(
            worker_id=socket.gethostname(), default_region=settings.default_region
        )
        self.router = CallRouter(clock=lambda: now().timestamp(), wall=now)
        self.router.on_disposition(self._on_disposition)
        self._sleep = sleep
        self._timer = timer
        self.runners: dict[str, CampaignRunner] = {}
        self.retiring: dict[str, CampaignRunner] = {}  # removed by a reload, calls still up
        for name, campaign in settings.campaigns.items():
            self.runners[name] = self._runner(name, campaign, self._dnc_list(campaign))
        self.ready = asyncio.Event()
        self.opened = asyncio.Event()
        self._background: set[asyncio.Task[None]] = set()
        self._runner_tasks: asyncio.TaskGroup | None = None
        self._stop: asyncio.Event | None = None

    def _dnc_list(self, campaign: Campaign) -> DncList | None:
        if campaign.dnc_file is None:
            return None
        return DncList(campaign.dnc_file, self.settings.default_region)

    def _runner(self, name: str, campaign: Campaign, dnc: DncList | None) -> CampaignRunner:
        runner = CampaignRunner(
            name,
            campaign,
            store=self.store,
            pbx=self.pbx,
            router=self.router,
            now=self.now,
            sleep=self._sleep,
            timer=self._timer,
            dnc=dnc,
            options=self.options,
            metrics=self.metrics,
        )
        if runner.agent_queue is not None:
            self.router.on_queue_event(runner.agent_queue.handle)
        return runner

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        for runner in list(self.runners.values()):
            await runner.open()
        self.opened.set()

    async def start(self) -> None:
        """Once AMI is logged in: read the queues, recover what a previous run left."""
        await self.read_queues()
        live = await self.live_channels()
        for runner in list(self.runners.values()):
            await self.recover(runner, live)
        self.ready.set()

    async def run(self, stop: asyncio.Event) -> None:
        await self.open()
        while not stop.is_set():
            logged_in = asyncio.ensure_future(self.pbx.wait_logged_in())
            stopped = asyncio.ensure_future(stop.wait())
            await asyncio.wait([logged_in, stopped], return_when=asyncio.FIRST_COMPLETED)
            logged_in.cancel()
            stopped.cancel()
            if stop.is_set():
                return
            try:
                await self.start()
                break
            except AmiError as exc:
                log.warning("campaign.recovery_failed", reason=str(exc))
                await asyncio.sleep(1)
        self._stop = stop
        async with asyncio.TaskGroup() as tasks:
            self._runner_tasks = tasks
            for runner in list(self.runners.values()):
                tasks.create_task(self._run_runner(runner, stop), name=f"campaign-{runner.name}")
        self._runner_tasks = None

    # -- reload ----------------------------------------------------------------------------

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
            await self.store.ensure_campaign(runner.name, campaign.kind)
        new_queue = runner.reconfigure(campaign, dnc)
        if new_queue is None:
            return
        self.router.on_queue_event(new_queue.handle)
        if self.ready.is_set():
            await self._read_queue_softly(runner)

    async def _add(self, runner: CampaignRunner) -> None:
        if self.opened.is_set():
            await runner.open()
        if self.ready.is_set():
            await self._read_queue_softly(runner)
            try:
                await self.recover(runner, await self.live_channels())
            except AmiError as exc:  # the next login recovers it with the others
                log.warning("campaign.recovery_failed", campaign=runner.name, reason=str(exc))
        self.runners[runner.name] = runner
        log.info("campaign.added", campaign=runner.name, kind=runner.campaign.kind)
        if self._runner_tasks is not None and self._stop is not None:
            self._runner_tasks.create_task(
                self._run_runner(runner, self._stop), name=f"campaign-{runner.name}"
            )

    async def _run_runner(self, runner: CampaignRunner, stop: asyncio.Event) -> None:
        try:
            await runner.run(stop)
        finally:
            if self.retiring.get(runner.name) is runner:
                del self.retiring[runner.name]
                log.info("campaign.retired", campaign=runner.name)

    async def _read_queue_softly(self, runner: CampaignRunner) -> None:
        try:
            await self.read_queue(runner)
        except AmiError as exc:  # the next login reads every queue again
            log.warning("campaign.agents_unread", campaign=runner.name, reason=str(exc))

    async def run_until_idle(self) -> None:
        """Tests: every runner in burst mode, together."""
        async with asyncio.TaskGroup() as tasks:
            for runner in list(self.runners.values()):
                tasks.create_task(runner.run_until_idle())

    # -- AMI -------------------------------------------------------------------------------

    async def handle_event(self, event: Mapping[str, str]) -> None:
        await self.router.handle(event)

    def on_link_change(self, state: LinkState) -> None:
        """Link listener: mark calls when the link drops; reconcile them after a new login."""
        if not state.logged_in:
            self.router.link_lost()
            for runner in list(self.runners.values()):
                if runner.agent_queue is not None:
                    runner.agent_queue.forget()
            return
        if not self.ready.is_set():
            return  # the first login: `start` does the rest
        task = asyncio.get_running_loop().create_task(self._after_reconnect())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _after_reconnect(self) -> None:
        try:
            await self.read_queues()
            live = await self.live_channels()
        except AmiError as exc:
            log.warning("campaign.reconcile_failed", reason=str(exc))
            return
        by_link = _by_linkedid(live)
        for call in list(self.router.calls.values()):
            channels = by_link.get(call.attempt_id)
            if channels:
                _resume(call, channels, self.now)
                log.info("call.followed_after_reconnect", attempt_id=call.attempt_id)
            else:
                call.finished.set()  # its task settles it as it stands
        for runner in list(self.runners.values()):
            await self.recover(runner, live)

    async def read_queues(self) -> None:
        for runner in list(self.runners.values()):
            await self.read_queue(runner)

    async def read_queue(self, runner: CampaignRunner) -> None:
        queue = runner.agent_queue
        if queue is None:
            return
        answer = await self.pbx.send({"Action": "QueueStatus", "Queue": queue.name}, as_list=True)
        queue.reset(dict(item) for item in answer)
        log.info("campaign.agents_read", campaign=runner.name, free_agents=queue.free_agents)

    async def live_channels(self) -> list[LiveChannel]:
        answer = await self.pbx.send({"Action": "CoreShowChannels"}, as_list=True)
        return [
            LiveChannel(
                uniqueid=item.get("Uniqueid", ""),
                linkedid=item.get("Linkedid", ""),
                up=item.get("ChannelState") == "6",
            )
            for item in answer
            if item.get("Event") == "CoreShowChannel"
        ]

    async def recover(self, runner: CampaignRunner, live: list[LiveChannel]) -> None:
        now = self.now()
        by_link = _by_linkedid(live)
        rows = await self.store.unsettled_attempts(
            runner.campaign_id, owner=self.options.worker_id, now=now
        )
        followed = settled = 0
        for row in rows:
            if row.attempt_id in self.router.calls:
                continue
            call = _call_of(row, runner)
            channels = by_link.get(row.channel_id)
            if channels:
                _resume(call, channels, self.now)
                runner.follow(call)
                followed += 1
            else:
                await runner.settle_lost(call)
                settled += 1
        released = await self.store.release_orphans(
            runner.campaign_id, owner=self.options.worker_id, now=now, keep=runner.holding
        )
        if followed or settled or released:
            log.info(
                "campaign.recovered",
                campaign=runner.name,
                followed=followed,
                settled_unknown=settled,
                released=released,
            )

    async def _on_disposition(self, attempt_id: str, event: Mapping[str, str]) -> None:
        call = self.router.calls.get(attempt_id)
        name = call.campaign if call is not None else event.get("Campaign", "")
        runner = self.runners.get(name) or self.retiring.get(name)
        if runner is None:  # another dialer's call on the same PBX, or an unknown campaign
            log.debug("call.disposition_unmatched", attempt_id=attempt_id, campaign=name)
            return
        await runner.record_disposition(attempt_id, event)

    # -- what the API shows ------------------------------------------------------------------

    def live_calls(self, name: str) -> list[dict[str, Any]]:
        """The campaign's calls in flight, oldest first: masked number, stage and age."""
        now = self.now()
        calls = sorted(
            (call for call in self.router.calls.values() if call.campaign == name),
            key=lambda call: call.started_at,
        )
        return [
            {
                "attempt_id": call.attempt_id,
                "phone": mask_phone(call.phone),
                "stage": call_stage(call),
                "started_at": call.started_at.isoformat(),
                "age_s": round(max(0.0, (now - call.started_at).total_seconds()), 1),
            }
            for call in calls
        ]

    async def status(self, name: str) -> dict[str, Any]:
        runner = self.runners[name]
        summary = await self.store.summary(runner.campaign_id)
        next_due = summary.pop("next_due_at")
        summary["state"] = "paused" if runner.paused else summary["state"]
        if not runner.campaign.enabled:
            summary["state"] = "disabled"
        summary.update(
            name=name,
            kind=runner.campaign.kind,
            calls_in_flight=len(runner.calls),
            max_concurrent_calls=runner.pacer.max_concurrent,
            max_calls_per_second=runner.campaign.max_calls_per_second,
            next_due_at=next_due.isoformat() if next_due else None,
        )
        if runner.agent_queue is not None:
            summary["free_agents"] = runner.agent_queue.free_agents
        summary["live_calls"] = self.live_calls(name)
        summary["recent_attempts"] = [
            {
                **row,
                "phone": mask_phone(row["phone"]),
                "started_at": row["started_at"].isoformat(),
                "next_attempt_at": _iso(row["next_attempt_at"]),
            }
            for row in await self.store.recent_attempts(runner.campaign_id)
        ]
        return summary


def call_stage(call: Call) -> str:
    """Where a call in flight stands: ringing, answered, or with an agent."""
    if call.with_agent:
        return "with_agent"
    if call.answered.is_set():
        return "answered"
    return "ringing"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _by_linkedid(live: list[LiveChannel]) -> dict[str, list[LiveChannel]]:
    found: dict[str, list[LiveChannel]] = {}
    for channel in live:
        found.setdefault(channel.linkedid, []).append(channel)
    return found


def _call_of(row: AttemptRow, runner: CampaignRunner) -> Call:
    return Call(
        attempt_id=row.attempt_id,
        campaign=runner.name,
        contact_id=row.contact_id,
        phone=row.phone,
        started_at=row.started_at,
        routed_to_queue=runner.routed_to_queue,
        on_change=lambda _: runner.update_cap(),
    )


def _resume(call: Call, channels: list[LiveChannel], now: Callable[[], datetime]) -> None:
    """The PBX still has the call: note its channels, and an answer we may have missed."""
    at, wall = now().timestamp(), now()
    for channel in channels:
        call.fold({"Event": "Newchannel", "Uniqueid": channel.uniqueid}, at, wall)
    ours = [c for c in channels if c.uniqueid in (call.channel_id, f"{call.channel_id}-2")]
    if any(c.up for c in ours) and call.observation.originate_response is None:
        call.fold({"Event": "OriginateResponse", "Response": "Success", "Reason": "4"}, at, wall)
    if len(channels) > len(ours):  # another leg on the call: an agent took it
        call.fold({"Event": "AgentConnect"}, at, wall)
