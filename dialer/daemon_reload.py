"""Reloading the config while the daemon runs: SIGHUP and `POST /v1/reload`.

The file is read again (in a thread: parsing is blocking work) and validated whole; a file that
does not validate changes nothing (each error logged as `config.reload_error`, then
`config.reload_refused`). Otherwise each component takes the new settings (`reload`), except
what only a restart can change (`dialer.config.reload`), which is kept and named. One reload at
a time; none while the daemon stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from aiohttp import web

from dialer.config import ConfigError, Settings, load_settings
from dialer.config.reload import ReloadOutcome, effective_settings, restart_only_changes
from dialer.logs import get_logger
from dialer.metrics import Metrics

__all__ = ["ConfigReloader", "Reloadable"]

log = get_logger(__name__)


class Reloadable(Protocol):
    """A component that takes a new config while it runs; returns what changed, by kind."""

    name: str

    async def reload(self, settings: Settings) -> dict[str, list[str]]: ...


class ReloadTarget(Protocol):
    """What a reload reads and changes of the daemon (`dialer.app.Daemon`)."""

    settings: Settings
    config_path: Path | None
    stopping: bool
    metrics: Metrics

    @property
    def components(self) -> Sequence[Reloadable]: ...


class ConfigReloader:
    def __init__(self, daemon: ReloadTarget) -> None:
        self.daemon = daemon
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[ReloadOutcome]] = set()

    async def reload(self) -> ReloadOutcome:
        """Read the config file again and apply it; one at a time."""
        async with self._lock:
            outcome = await self._reload()
        self.daemon.metrics.config_reloaded(applied=outcome.applied)
        return outcome

    def request(self) -> None:
        """SIGHUP: reload in the background (the outcome is logged)."""
        task = asyncio.get_running_loop().create_task(self.reload(), name="reload")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def route(self, _: web.Request) -> web.Response:
        """`POST /v1/reload`: 200 with what changed, 422 with every error."""
        outcome = await self.reload()
        return web.json_response(outcome.as_dict(), status=200 if outcome.applied else 422)

    async def _reload(self) -> ReloadOutcome:
        if self.daemon.config_path is None:
            return ReloadOutcome(applied=False, errors=["started without a config file"])
        if self.daemon.stopping:
            return ReloadOutcome(applied=False, errors=["the daemon is stopping"])
        try:
            new = await asyncio.to_thread(load_settings, self.daemon.config_path)
        except ConfigError as exc:
            errors = [str(issue) for issue in exc.issues]
            for error in errors:
                log.error("config.reload_error", error=error)
            log.error("config.reload_refused", errors=len(errors), kept="the running config")
            return ReloadOutcome(applied=False, errors=errors)
        return await self._apply(new)

    async def _apply(self, new: Settings) -> ReloadOutcome:
        needs_restart = restart_only_changes(self.daemon.settings, new)
        settings = effective_settings(self.daemon.settings, new)
        changes: dict[str, list[str]] = {}
        for component in self.daemon.components:
            try:
                changes.update(await component.reload(settings))
            except (OSError, ValueError) as exc:  # a DNC file that cannot be read, say
                log.error("config.reload_refused", component=component.name, error=str(exc))
                return ReloadOutcome(applied=False, errors=[f"{component.name}: {exc}"])
        self.daemon.settings = settings
        for key in needs_restart:
            log.warning("config.needs_restart", key=key, message="kept until the next restart")
        log.info("config.reloaded", needs_restart=needs_restart, **changes)
        return ReloadOutcome(applied=True, changes=changes, needs_restart=needs_restart)
