"""The campaigns component: every campaign runner, the shared AMI event router, recovery.

- One `CallRouter` handles the PBX events of every campaign's calls (`dialer.calling.calls`);
  queue events go to the runner whose kind dials per free agent (`dialer.calling.queues`).
- At start, once the PBX is logged in, each runner recovers what a previous run left
  (`dialer.calling.recovery`), then dials.
- When the link drops, every call in flight is marked (`observe_link_lost`) and agent queues
  forget their agents (no call is placed meanwhile anyway). After the next login, calls the PBX
  still has are followed on; the others end and are settled as they stand; queues are read
  again.
- What the HTTP API and the status page ask (status, contacts, pause) goes through here.
- With several workers on one store (`slots`: `dialer.calling.slots`), a runner dials only
  while this worker holds its campaign's slot: at each heartbeat (`on_heartbeat`) the worker
  claims its share, recovers what a dead holder left (adopted with the slot), starts those
  runners, and re-reads the pause state of the ones it runs (set through any worker's API).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dialer.calling.calls import Call, CallRouter
from dialer.calling.contact_import import RowResult, add_rows
from dialer.calling.dnc import DncList
from dialer.calling.options import RunnerOptions
from dialer.calling.ports import CampaignReports, CampaignRepository, Pbx, PbxError
from dialer.calling.recovery import reconcile, recover
from dialer.calling.reloading import ReloadingCampaigns
from dialer.calling.runner import CampaignRunner
from dialer.calling.slots import Candidate, SlotKeeper
from dialer.calling.status import campaign_status, live_calls
from dialer.clock import Clock, Sleep
from dialer.config import Campaign, Settings
from dialer.health import Health
from dialer.logs import get_logger
from dialer.metrics import Metrics

log = get_logger(__name__)

__all__ = ["CampaignRowsOnly", "CampaignService"]

RECOVERY_RETRY_S = 1.0


def candidate(runner: CampaignRunner) -> Candidate:
    queue = runner.agent_queue
    return Candidate(
        runner.name, runner.campaign_id, runner.campaign.pbx, queue.name if queue else None
    )


class CampaignService(ReloadingCampaigns):
    """Holds the runners; `run(stop)` is the daemon component's long-running task."""

    name = "campaigns"

    def __init__(
        self,
        settings: Settings,
        repository: CampaignRepository,
        reports: CampaignReports,
        pbx: Pbx,
        *,
        now: Clock,
        sleep: Sleep = asyncio.sleep,
        timer: Sleep = asyncio.sleep,
        options: RunnerOptions | None = None,
        metrics: Metrics | None = None,
        health: Health | None = None,
        slots: SlotKeeper | None = None,
        heartbeats_before_claiming: int = 0,
    ) -> None:
        self.settings = settings
        self.slots = slots
        self._heartbeats_to_skip = heartbeats_before_claiming
        self.metrics = metrics or Metrics()
        self.health = health or Health(now=now)
        self.guard = self.health.guard("campaigns", sleep)
        self.repository = repository
        self.reports = reports
        self.pbx = pbx
        self.now = now
        self.options = options or RunnerOptions(
            worker_id=socket.gethostname(), default_region=settings.default_region
        )
        self.router = CallRouter(clock=lambda: now().timestamp(), wall=now)
        self.router.on_disposition(self._on_disposition)
        self.router.on_queue_event(self._on_queue_event)
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
        self.started: set[str] = set()  # runners dialling (their slot held, recovered)
        self._held: set[str] = set()  # campaigns whose runner slot this worker holds

    def _dnc_list(self, campaign: Campaign) -> DncList | None:
        if campaign.dnc_file is None:
            return None
        return DncList(campaign.dnc_file, self.settings.default_region)

    def _runner(self, name: str, campaign: Campaign, dnc: DncList | None) -> CampaignRunner:
        return CampaignRunner(
            name,
            campaign,
            repository=self.repository,
            pbx=self.pbx,
            router=self.router,
            now=self.now,
            sleep=self._sleep,
            timer=self._timer,
            dnc=dnc,
            options=self.options,
            metrics=self.metrics,
            health=self.health,
        )

    def _live_runners(self) -> Iterable[CampaignRunner]:
        return [*self.runners.values(), *self.retiring.values()]

    # -- lifecycle -----------------------------------------------------------------------------

    async def open(self) -> None:
        for runner in list(self.runners.values()):
            await runner.open()
        self.opened.set()

    def held(self, runner: CampaignRunner) -> bool:
        """Whether this worker runs the campaign (always, without slots)."""
        return self.slots is None or runner.name in self._held

    async def start(self) -> None:
        """Once the PBX is logged in: read the queues, recover what a previous run left."""
        await self.read_queues()
        live = await self.pbx.live_channels()
        for runner in list(self.runners.values()):
            if self.held(runner):
                await self._recover(runner, live)
        self.ready.set()

    async def open_when_possible(self, stop: asyncio.Event) -> None:
        """`open`, again after a backoff while the store is down (until `stop`)."""
        while not stop.is_set():
            try:
                await self.open()
                return
            except Exception as exc:
                await self.guard.failed(exc)

    async def run(self, stop: asyncio.Event) -> None:
        await self.open_when_possible(stop)
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
            except PbxError as exc:
                log.warning("campaign.recovery_failed", reason=str(exc))
                await self._sleep(RECOVERY_RETRY_S)
            except Exception as exc:  # the store: reported, retried after a backoff
                await self.guard.failed(exc)
        self.guard.worked()
        self._stop = stop
        async with asyncio.TaskGroup() as tasks:
            self._runner_tasks = tasks
            tasks.create_task(stop.wait(), name="campaigns-until-stopped")
            for runner in list(self.runners.values()):
                if self.held(runner):
                    self._start_runner(runner)
        self._runner_tasks = None

    def _start_runner(self, runner: CampaignRunner) -> None:
        if self._runner_tasks is None or self._stop is None or runner.name in self.started:
            return
        self.started.add(runner.name)
        self._runner_tasks.create_task(
            self._run_runner(runner, self._stop), name=f"campaign-{runner.name}"
        )

    # -- several workers -------------------------------------------------------------------

    async def on_heartbeat(self, _dead_workers: Sequence[str] = ()) -> None:
        """Claim this worker's share of the campaigns, recover and start the ones newly held,
        re-read the pause state of those it runs (another worker's API may have set it)."""
        if self.slots is None or self._runner_tasks is None:
            return  # not dialling yet (the PBX is not logged in, or the store not open)
        if self._heartbeats_to_skip > 0:  # workers starting together see each other first
            self._heartbeats_to_skip -= 1
            return
        runners = list(self.runners.values())
        self._held.update(await self.slots.claim([candidate(r) for r in runners], self._held))
        waiting = [runner for runner in runners if runner.name in self._held - self.started]
        if waiting:
            try:
                live = await self.pbx.live_channels()
            except PbxError as exc:  # the next heartbeat tries again
                log.warning("campaign.recovery_failed", reason=str(exc))
                return
            for runner in waiting:
                await self._read_queue_softly(runner)
                await self._recover(runner, live)
                self._start_runner(runner)
        for runner in runners:
            if runner.name in self.started:
                await runner.refresh_state()

    async def _run_runner(self, runner: CampaignRunner, stop: asyncio.Event) -> None:
        try:
            await runner.run(stop)
        finally:
            self.started.discard(runner.name)
            if self.retiring.get(runner.name) is runner:
                del self.retiring[runner.name]
                log.info("campaign.retired", campaign=runner.name)

    async def _read_queue_softly(self, runner: CampaignRunner) -> None:
        try:
            await self.read_queue(runner)
        except PbxError as exc:  # the next login reads every queue again
            log.warning("campaign.agents_unread", campaign=runner.name, reason=str(exc))

    async def run_until_idle(self) -> None:
        """Tests: every runner in burst mode, together."""
        async with asyncio.TaskGroup() as tasks:
            for runner in list(self.runners.values()):
                tasks.create_task(runner.run_until_idle())

    # -- PBX events ------------------------------------------------------------------------

    async def handle_event(self, event: Mapping[str, str]) -> None:
        await self.router.handle(event)

    def _on_queue_event(self, event: Mapping[str, str]) -> None:
        for runner in self._live_runners():
            runner.queue_event(event)

    def on_link_change(self, logged_in: bool) -> None:
        """Link listener: mark calls when the link drops; reconcile them after a new login."""
        if not logged_in:
            self.router.link_lost()
            for runner in self._live_runners():
                runner.forget_queue()
            return
        if not self.ready.is_set():
            return  # the first login: `start` does the rest
        task = asyncio.get_running_loop().create_task(self._after_reconnect())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _after_reconnect(self) -> None:
        try:
            await self.read_queues()
            live = await self.pbx.live_channels()
        except PbxError as exc:
            log.warning("campaign.reconcile_failed", reason=str(exc))
            return
        try:
            await reconcile(
                list(self.router.calls.values()),
                live,
                pbx=self.pbx,
                now=self.now,
                on_digit=self._recorded_digit,
            )
        except PbxError as exc:  # the next login tries again; the calls keep their state
            log.warning("campaign.reconcile_failed", reason=str(exc))
            return
        for runner in list(self.runners.values()):
            if self.held(runner):
                await self._recover(runner, live)

    async def read_queues(self) -> None:
        for runner in list(self.runners.values()):
            await self.read_queue(runner)

    async def read_queue(self, runner: CampaignRunner) -> None:
        queue = runner.agent_queue
        if queue is None:
            return
        runner.reset_queue(await self.pbx.queue_status(queue.name))
        log.info("campaign.agents_read", campaign=runner.name, free_agents=queue.free_agents)

    async def _recover(self, runner: CampaignRunner, live: list[Any]) -> None:
        await recover(
            runner,
            live,
            repository=self.repository,
            pbx=self.pbx,
            tracked=self.router.calls,
            worker_id=self.options.worker_id,
            now=self.now,
        )

    async def _recorded_digit(self, call: Call, digit: str) -> None:
        await self._on_disposition(call.attempt_id, {"Digit": digit, "Campaign": call.campaign})

    async def _on_disposition(self, attempt_id: str, event: Mapping[str, str]) -> None:
        call = self.router.calls.get(attempt_id)
        name = call.campaign if call is not None else event.get("Campaign", "")
        runner = self.runners.get(name) or self.retiring.get(name)
        if runner is None:  # another dialer's call on the same PBX, or an unknown campaign
            log.debug("call.disposition_unmatched", attempt_id=attempt_id, campaign=name)
            return
        await runner.record_disposition(attempt_id, event)

    # -- what the API asks ---------------------------------------------------------------------

    def live_calls(self, name: str) -> list[dict[str, Any]]:
        """The campaign's calls in flight, oldest first: masked number, stage and age."""
        calls = [call for call in self.router.calls.values() if call.campaign == name]
        return live_calls(calls, self.now())

    async def status(self, name: str) -> dict[str, Any]:
        calls = [call for call in self.router.calls.values() if call.campaign == name]
        return await campaign_status(self.runners[name], self.reports, calls, self.now())

    async def add_contacts(
        self, name: str, rows: Iterable[tuple[int, Mapping[str, Any]]]
    ) -> list[RowResult]:
        """Check and add contacts to campaign `name` (one result per row), and dial them."""
        runner = self.runners[name]
        results = await add_rows(
            self.repository,
            runner.campaign_id,
            runner.campaign,
            rows,
            default_region=self.settings.default_region,
            now=self.now(),
        )
        runner.wake()
        return results

    async def set_paused(self, name: str, paused: bool) -> None:
        await self.runners[name].set_paused(paused)


@dataclass
class CampaignRowsOnly:
    """The campaigns of a worker that serves their API but does not dial: their rows exist,
    (the store may be down at start: retried), nothing more."""

    campaigns: CampaignService
    name: str = "campaigns"

    async def run(self, stop: asyncio.Event) -> None:
        await self.campaigns.open_when_possible(stop)

    async def reload(self, settings: Settings) -> dict[str, list[str]]:
        return await self.campaigns.reload(settings)
