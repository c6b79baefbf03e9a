"""Wiring: build the daemon from validated settings, run it until told to stop.

`build(settings)` makes every part from the settings alone (no module globals); `Daemon.run(stop)`
opens the store, makes the components (campaign runners, the SMS dispatcher...) from their
factories, serves the API, keeps the AMI link up, announces readiness, and on `stop` lets each
component drain within `api.shutdown_grace_s` before shutting down in reverse order.

A component is what a feature adds to the daemon: routes for the API and one long-running
`run(stop)` that returns once `stop` is set and its work in flight has settled. Its factory gets
the `Resources` (settings, open store, AMI client, clock) and is listed in `build()`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from aiohttp import web

from dialer.ami import AmiClient, AmiOptions
from dialer.api import Check, link_check, make_web_app
from dialer.campaign_api import campaigns_component
from dialer.config import ConfigError, Settings, load_settings
from dialer.logs import get_logger
from dialer.metrics import Metrics, scrape
from dialer.outbox_store import backlog
from dialer.reload import Reloadable, ReloadOutcome, effective_settings, restart_only_changes
from dialer.sms import make_sms_component
from dialer.status_page import status_page_component
from dialer.store import Store, StoreError

log = get_logger(__name__)

STORE_PING_TIMEOUT_S = 2.0


class StartupError(Exception):
    """The daemon cannot start for a reason the operator must fix (exit status 2)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Resources:
    """What a component factory gets: everything is open and ready to use."""

    settings: Settings
    store: Store
    ami: AmiClient
    now: Callable[[], datetime] = utc_now
    metrics: Metrics = field(default_factory=Metrics)


class Component(Protocol):
    """A part of the daemon with API routes and one long-running task."""

    name: str

    def add_routes(self, app: web.Application) -> None:
        """Register this component's routes (under /v1/ they need the bearer token)."""

    async def run(self, stop: asyncio.Event) -> None:
        """Work until `stop` is set, then settle what is in flight and return."""


ComponentFactory = Callable[[Resources], Component]


def ami_options(settings: Settings) -> AmiOptions:
    ami = settings.ami
    return AmiOptions(
        host=ami.host,
        port=ami.port,
        username=ami.username,
        secret=ami.secret.get_secret_value(),
        events=ami.events,
        connect_timeout_s=ami.connect_timeout_s,
        action_timeout_s=ami.action_timeout_s,
        ping_interval_s=ami.ping_interval_s,
        ping_timeout_s=ami.ping_timeout_s,
        reconnect_initial_backoff_s=ami.reconnect_initial_backoff_s,
        reconnect_max_backoff_s=ami.reconnect_max_backoff_s,
        login_failure_backoff_s=ami.login_failure_backoff_s,
    )


@dataclass
class Daemon:
    settings: Settings
    ami: AmiClient
    component_factories: Sequence[ComponentFactory] = ()
    now: Callable[[], datetime] = utc_now
    store: Store | None = None
    components: list[Component] = field(default_factory=list)
    metrics: Metrics = field(default_factory=Metrics)
    cancelled: list[str] = field(default_factory=list)  # components stopped by the grace
    config_path: Path | None = None  # where `reload` reads the config again
    stopping: bool = False
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _background: set[asyncio.Task[ReloadOutcome]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.ami.add_link_listener(self.metrics.on_link_change)
        self.ami.add_event_handler(lambda event: self.metrics.observe_event(event, self.now()))

    async def readiness(self) -> list[Check]:
        return [link_check(self.ami.link), await self._store_check()]

    async def _store_check(self) -> Check:
        if self.store is None:
            return Check("store", False, "not open yet")
        try:
            async with asyncio.timeout(STORE_PING_TIMEOUT_S):
                await self.store.ping()
        except (StoreError, TimeoutError) as exc:
            return Check("store", False, str(exc) or "no answer")
        return Check("store", True, f"{self.store.dialect} reachable")

    async def reload(self) -> ReloadOutcome:
        """Read the config file again and apply it (see `dialer.reload`); one at a time."""
        async with self._reload_lock:
            outcome = await self._reload()
        self.metrics.config_reloaded(applied=outcome.applied)
        return outcome

    async def _reload(self) -> ReloadOutcome:
        if self.config_path is None:
            return ReloadOutcome(applied=False, errors=["started without a config file"])
        if self.stopping:
            return ReloadOutcome(applied=False, errors=["the daemon is stopping"])
        try:
            new = await asyncio.to_thread(load_settings, self.config_path)
        except ConfigError as exc:
            errors = [str(issue) for issue in exc.issues]
            for error in errors:
                log.error("config.reload_error", error=error)
            log.error("config.reload_refused", errors=len(errors), kept="the running config")
            return ReloadOutcome(applied=False, errors=errors)
        return await self._apply(new)

    async def _apply(self, new: Settings) -> ReloadOutcome:
        needs_restart = restart_only_changes(self.settings, new)
        settings = effective_settings(self.settings, new)
        changes: dict[str, list[str]] = {}
        for component in self.components:
            if isinstance(component, Reloadable):
                try:
                    changes.update(await component.reload(settings))
                except (OSError, ValueError) as exc:  # a DNC file that cannot be read, say
                    log.error("config.reload_refused", component=component.name, error=str(exc))
                    return ReloadOutcome(applied=False, errors=[f"{component.name}: {exc}"])
        self.settings = settings
        for key in needs_restart:
            log.warning("config.needs_restart", key=key, message="kept until the next restart")
        log.info("config.reloaded", needs_restart=needs_restart, **changes)
        return ReloadOutcome(applied=True, changes=changes, needs_restart=needs_restart)

    def request_reload(self) -> None:
        """SIGHUP: reload in the background (the outcome is logged)."""
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload_route(self, _: web.Request) -> web.Response:
        outcome = await self.reload()
        return web.json_response(outcome.as_dict(), status=200 if outcome.applied else 422)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set; raise `StartupError` for what the operator must fix."""
        try:
            store = self.store = await Store.open(self.settings.store.async_url)
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        resources = Resources(
            settings=self.settings, store=store, ami=self.ami, now=self.now, metrics=self.metrics
        )
        self.components = [make(resources) for make in self.component_factories]
        api = self.settings.api
        web_app = make_web_app(
            self.readiness,
            max_body_bytes=api.max_body_bytes,
            api_token=api.token.get_secret_value(),
            metrics_page=lambda: scrape(self.metrics, store, self.now()),
        )
        web_app.router.add_post("/v1/reload", self._reload_route)
        for component in self.components:
            component.add_routes(web_app)
        runner = web.AppRunner(web_app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            try:
                await web.TCPSite(runner, api.host, api.port).start()
            except OSError as exc:
                raise StartupError(
                    f"cannot listen on {api.host}:{api.port}: {exc.strerror}"
                ) from None
            log.info("api.listening", url=f"http://{api.host}:{api.port}")
            await self._run_until_stopped(stop)
        finally:
            async with asyncio.timeout(api.shutdown_grace_s):
                await runner.cleanup()
                summary = await self._left_behind(store)
                await store.close()
            log.info("daemon.stopped", **summary)

    async def _run_until_stopped(self, stop: asyncio.Event) -> None:
        grace_s = self.settings.api.shutdown_grace_s
        async with asyncio.TaskGroup() as tasks:
            ami_task = tasks.create_task(self.ami.run(), name="ami")
            ready_task = tasks.create_task(self._announce_ready(), name="announce-ready")
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
            ami_task.cancel()

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
        await self.ami.wait_logged_in()
        with contextlib.suppress(TimeoutError):
            checks = await self.readiness()
            log.info(
                "daemon.ready",
                message="connected and ready",
                **{check.name: check.detail for check in checks},
                api=f"http://{self.settings.api.host}:{self.settings.api.port}",
            )


def build(settings: Settings, *, config_path: Path | None = None) -> Daemon:
    """Every part of the daemon, made from validated settings (read from `config_path`)."""
    factories: list[ComponentFactory] = [
        campaigns_component,
        make_sms_component,
        status_page_component,
    ]
    return Daemon(
        settings=settings,
        ami=AmiClient(ami_options(settings)),
        component_factories=factories,
        metrics=Metrics(),
        config_path=config_path,
    )
