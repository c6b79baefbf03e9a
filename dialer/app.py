"""Wiring: build the daemon from validated settings, run it until told to stop.

The only place that wires. `build(settings)` makes the adapters (the AMI client and its `Pbx`
for the campaigns) from the settings alone (no module globals). `Daemon.run(stop)` opens the
store, makes the core's services on the store's repositories (`services`: `CampaignService`,
`SmsService`), routes the AMI's events and link changes to them, serves the HTTP API with every
route (`web_app`; the status page's sessions in the store) on a site that caps connections and
times out idle ones (`dialer.http.connections`), keeps the AMI link up, announces readiness,
and on `stop` lets each component drain within `api.shutdown_grace_s` before shutting down in
reverse order. `dialer.daemon_reload` applies a reloaded config (SIGHUP, `POST /v1/reload`).

A component is a long-running `run(stop)` that returns once `stop` is set and its work in
flight has settled, and that may take a reloaded config (`reload(settings)`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Protocol

from aiohttp import web

from dialer.calling.options import RunnerOptions
from dialer.calling.service import CampaignRowsOnly, CampaignService
from dialer.calling.slots import SlotKeeper
from dialer.clock import Clock, utc_now
from dialer.config import Settings
from dialer.daemon_reload import ConfigReloader
from dialer.daemon_settings import ami_options, worker_identity
from dialer.health import Health
from dialer.http.campaigns import add_campaign_routes
from dialer.http.connections import LimitedSite, runner_options
from dialer.http.login_throttle import LoginThrottle
from dialer.http.server import Check, make_web_app
from dialer.http.sessions import Sessions
from dialer.http.sms import add_sms_routes
from dialer.http.status_page import StatusPage
from dialer.http.timeline import add_timeline_routes
from dialer.http.trends import add_trend_routes
from dialer.logs import get_logger
from dialer.messaging.followup_service import FollowUpService
from dialer.messaging.service import SmsService
from dialer.metrics import Metrics
from dialer.pbx.adapter import AmiPbx
from dialer.pbx.client import AmiClient
from dialer.pbx.wire import LinkState
from dialer.store import (
    CallbackStore,
    CampaignStore,
    EventStore,
    OptOutStore,
    OutboxStore,
    SessionStore,
    Store,
    StoreError,
)
from dialer.store.notify import OutboxNews
from dialer.store.runner_slots import RunnerSlotStore
from dialer.store.sms_reports import backlog
from dialer.store.timeline import TimelineStore
from dialer.store.workers import SqliteLock, WorkerStore
from dialer.workers import Membership, Role, WorkerIdentity, WorkerIdTaken, default_worker_id

__all__ = ["Component", "Daemon", "LeaseLost", "StartupError", "build", "metrics_page"]

log = get_logger(__name__)

STORE_PING_TIMEOUT_S = 2.0


class StartupError(Exception):
    """The daemon cannot start for a reason the operator must fix (exit status 2)."""


class LeaseLost(Exception):
    """This worker was declared dead (paused past its lease): it stopped (exit status 3)."""


class Component(Protocol):
    """A part of the daemon with one long-running task and a reloadable config."""

    name: str

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then settle what is in flight and return."""

    async def reload(self, settings: Settings) -> dict[str, list[str]]:
        """Take a reloaded config; what changed, by kind. Raises OSError or ValueError when
        it cannot (changing nothing)."""


async def metrics_page(metrics: Metrics, store: Store, now: datetime) -> bytes:
    """`GET /metrics`: the outbox gauges read from the store now, then the exposition."""
    waiting = await backlog(store, now=now)
    metrics.set_backlog(depth=waiting.depth, oldest_due_age_s=waiting.oldest_due_age_s)
    return metrics.render()


def link_check(state: LinkState) -> Check:
    return Check("ami", state.logged_in, state.detail)


@dataclass
class Daemon:
    settings: Settings
    ami: AmiClient
    worker: WorkerIdentity = field(default_factory=lambda: WorkerIdentity(default_worker_id()))
    now: Clock = utc_now
    config_path: Path | None = None  # where a reload reads the config again
    store: Store | None = None
    components: list[Component] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    health: Health = field(default_factory=Health)
    cancelled: list[str] = field(default_factory=list)  # components stopped by the grace
    stopping: bool = False
    reloader: ConfigReloader = field(init=False)

    def __post_init__(self) -> None:
        self.health.now = self.now
        self.ami.add_link_listener(
            lambda state: self.metrics.on_link_change(
                logged_in=state.logged_in, reconnects=state.reconnects
            )
        )
        self.ami.add_event_handler(lambda event: self.metrics.observe_event(event, self.now()))
        self.reloader = ConfigReloader(self)

    # -- what the HTTP API shows ---------------------------------------------------------------

    async def readiness(self) -> list[Check]:
        """The AMI link (a worker that dials), the store, and every component waiting for a
        dependency."""
        failing = [
            Check(name, False, f"{state.detail} (since {state.since.isoformat()})")
            for name, state in sorted(self.health.failing().items())
        ]
        link = [link_check(self.ami.link)] if self.worker.plays("campaigns") else []
        return [*link, await self._store_check(), *failing]

    async def _store_check(self) -> Check:
        if self.store is None:
            return Check("store", False, "not open yet")
        try:
            async with asyncio.timeout(STORE_PING_TIMEOUT_S):
                await self.store.ping()
        except (StoreError, TimeoutError) as exc:
            return Check("store", False, str(exc) or "no answer")
        return Check("store", True, f"{self.store.dialect} reachable")

    async def metrics_page(self) -> bytes:
        for name, state in self.health.components.items():
            self.metrics.component_healthy.labels(component=name).set(1 if state.ok else 0)
        if self.store is None:
            return self.metrics.render()
        return await metrics_page(self.metrics, self.store, self.now())

    def request_reload(self) -> None:
        """SIGHUP: reload in the background (the outcome is logged)."""
        self.reloader.request()

    # -- building and running ------------------------------------------------------------------

    def web_app(self, store: Store, campaigns: CampaignService, sms: SmsService) -> web.Application:
        """The HTTP API with every route, on the services made by `services`."""
        api = self.settings.api
        token = api.token.get_secret_value()
        sessions = Sessions(SessionStore(store), token, ttl_s=api.session_ttl_s, now=self.now)
        app = make_web_app(
            self.readiness,
            max_body_bytes=api.max_body_bytes,
            api_token=token,
            metrics_page=self.metrics_page,
            sessions=sessions,
            body_timeout_s=api.body_timeout_s,
        )
        app.router.add_post("/v1/reload", self.reloader.route)
        add_campaign_routes(app, campaigns)
        add_sms_routes(app, sms, store)
        add_timeline_routes(app, store, default_region=self.settings.default_region)
        add_trend_routes(app, store, now=self.now)
        StatusPage(sessions, LoginThrottle(self.now), public_url=api.public_url).add_routes(app)
        return app

    def services(self, store: Store) -> tuple[CampaignService, SmsService]:
        """The core's components on the store's repositories, wired to the AMI client."""
        campaign_store = CampaignStore(store)
        campaigns = CampaignService(
            self.settings,
            campaign_store,
            campaign_store,
            AmiPbx(self.ami),
            now=self.now,
            metrics=self.metrics,
            health=self.health,
            options=RunnerOptions(
                worker_id=self.worker.id, default_region=self.settings.default_region
            ),
            slots=SlotKeeper(RunnerSlotStore(store), self.worker.id, self.worker.pbx),
            # Workers starting together see each other before sharing the campaigns out.
            heartbeats_before_claiming=1 if store.dialect == "postgresql" else 0,
        )
        self.ami.add_event_handler(campaigns.handle_event)
        self.ami.add_link_listener(lambda state: campaigns.on_link_change(state.logged_in))
        sms = SmsService(
            self.settings,
            events=EventStore(store),
            outbox=OutboxStore(store, owner=self.worker.id),
            opt_outs=OptOutStore(store),
            callbacks=CallbackStore(store),
            now=self.now,
            metrics=self.metrics,
            health=self.health,
            timeline=TimelineStore(store),
        )
        return campaigns, sms

    def follow_up(self, store: Store) -> FollowUpService:
        """Escalation rules, webhooks to the order system, timeline pruning."""
        return FollowUpService(
            self.settings,
            timeline=TimelineStore(store),
            webhooks=OutboxStore(store, owner=self.worker.id, channel="webhook"),
            now=self.now,
            health=self.health,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; raise `StartupError` for what the operator must fix,
        `LeaseLost` when this worker was declared dead meanwhile."""
        try:
            store = self.store = await Store.open(self.settings.store.async_url)
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        sqlite_lock = SqliteLock(store.location) if store.dialect == "sqlite" else None
        try:
            if sqlite_lock is not None:
                sqlite_lock.acquire()
            membership = await self._join(store)
        except (StoreError, WorkerIdTaken) as exc:
            await store.close()
            raise StartupError(str(exc)) from None
        try:
            await self._serve(store, membership, stop)
        finally:
            await membership.leave()
            if sqlite_lock is not None:
                sqlite_lock.release()
        if membership.lost.is_set():
            raise LeaseLost(f"worker {self.worker.id} was declared dead: its lease ran out")

    async def _join(self, store: Store) -> Membership:
        worker = self.settings.worker
        membership = Membership(
            WorkerStore(store),
            self.worker,
            lease_s=worker.lease_s,
            heartbeat_s=worker.heartbeat_s,
            shared=store.dialect == "postgresql",  # SQLite: one worker, nobody to tell
        )
        await membership.join()
        return membership

    async def _serve(self, store: Store, membership: Membership, stop: asyncio.Event) -> None:
        campaigns, sms = self.services(store)
        self.components = []
        if self.worker.plays("dispatcher"):
            self.components.append(sms)
            follow_up = self.follow_up(store)
            self.components.append(follow_up)
            if membership.shared:
                membership.on_tick(sms.take_over)
                membership.on_tick(follow_up.take_over)
        if self.worker.plays("campaigns"):
            self.components.append(campaigns)
            membership.on_tick(campaigns.on_heartbeat)
        elif self.worker.plays("api"):  # its campaign routes need the campaigns' rows
            self.components.append(CampaignRowsOnly(campaigns))
        api = self.settings.api
        runner = web.AppRunner(
            self.web_app(store, campaigns, sms),
            handle_signals=False,
            **runner_options(idle_timeout_s=api.idle_timeout_s),
        )
        await runner.setup()
        try:
            if self.worker.plays("api"):
                site = LimitedSite(runner, api.host, api.port, max_connections=api.max_connections)
                try:
                    await site.start()
                except OSError as exc:
                    raise StartupError(
                        f"cannot listen on {api.host}:{api.port}: {exc.strerror}"
                    ) from None
                log.info("api.listening", url=f"http://{api.host}:{api.port}")
            # A dispatcher hears at once of messages another worker's intake queued.
            listens = store.dialect == "postgresql" and self.worker.plays("dispatcher")
            news = OutboxNews(store.engine.url, sms.wake) if listens else None
            await self._run_until_stopped(stop, membership, news)
        finally:
            async with asyncio.timeout(api.shutdown_grace_s):
                await runner.cleanup()
                summary = await self._left_behind(store)
                await store.close()
            log.info("daemon.stopped", **summary)

    async def _run_until_stopped(
        self, stop: asyncio.Event, membership: Membership, news: OutboxNews | None
    ) -> None:
        grace_s = self.settings.api.shutdown_grace_s
        dials = self.worker.plays("campaigns")
        async with asyncio.TaskGroup() as tasks:
            ami_task = tasks.create_task(self.ami.run(), name="ami") if dials else None
            news_task = tasks.create_task(news.run(stop), name=news.name) if news else None
            ready_task = tasks.create_task(self._announce_ready(), name="announce-ready")
            heartbeat = tasks.create_task(membership.run(stop), name="heartbeat")
            component_tasks = [
                tasks.create_task(component.run(stop), name=component.name)
                for component in self.components
            ]
            await stop.wait()
            self.stopping = True
            log.info("daemon.stopping", grace_s=grace_s)
            ready_task.cancel()
            if component_tasks:
                _, still_running = await asyncio.wait(component_tasks, timeout=grace_s)
                for task in still_running:
                    log.warning("daemon.component_cancelled", component=task.get_name())
                    self.cancelled.append(task.get_name())
                    task.cancel()
            heartbeat.cancel()  # after the components: a worker draining is still live
            for background in (ami_task, news_task):
                if background is not None:
                    background.cancel()

    async def _left_behind(self, store: Store) -> dict[str, object]:
        """The one-line shutdown summary: what was left, and why."""
        calls = self.metrics.calls_in_flight_now()
        try:
            sms_waiting: int | None = (await backlog(store, now=self.now())).depth
        except Exception:  # a broken store must not stop the shutdown; the summary says unknown
            sms_waiting = None
        if self.cancelled:
            why = (
                f"the {self.settings.api.shutdown_grace_s:g} s shutdown grace ran out; "
                "calls still up and messages left sending are settled at the next start"
            )
        elif sms_waiting:
            why = "messages due later wait in the store for the next start"
        else:
            why = "nothing left"
        return {
            "calls_in_flight": calls,
            "sms_waiting": sms_waiting,
            "cancelled": self.cancelled,
            "why": why,
        }

    async def _announce_ready(self) -> None:
        if self.worker.plays("campaigns"):
            await self.ami.wait_logged_in()
        with contextlib.suppress(TimeoutError):
            checks = await self.readiness()
            log.info(
                "daemon.ready",
                message="connected and ready",
                **{check.name: check.detail for check in checks},
                api=f"http://{self.settings.api.host}:{self.settings.api.port}",
                worker_id=self.worker.id,
                roles=list(self.worker.roles),
            )


def build(
    settings: Settings,
    *,
    config_path: Path | None = None,
    roles: Sequence[Role] | None = None,
) -> Daemon:
    """Every part of the daemon, made from validated settings (read from `config_path`);
    `roles` (`dialer run --role`) override `worker.roles`."""
    return Daemon(
        settings=settings,
        ami=AmiClient(ami_options(settings)),
        worker=worker_identity(settings, roles),
        metrics=Metrics(),
        config_path=config_path,
    )
