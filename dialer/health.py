"""The daemon's health: which components work, which wait for a dependency, and since when.

A store that cannot be reached, or a SQLite file locked by another writer (a long import),
must never stop the daemon. The store raises `StoreUnavailable` for those (and only those)
failures; a component that meets one (or any other failure of its loop) backs off
(`Backoff`), retries, and reports it here, so that `/readyz` and the metric
`outreach_component_healthy` say what is waiting and why, until it works again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from dialer.clock import Clock, Sleep, utc_now
from dialer.logs import get_logger

__all__ = ["Backoff", "ComponentState", "Guard", "Health", "StoreUnavailable"]

log = get_logger(__name__)


class StoreUnavailable(Exception):
    """The store cannot be reached, timed out, or is locked: the work may be retried later."""


@dataclass(frozen=True)
class ComponentState:
    ok: bool
    detail: str
    since: datetime


@dataclass
class Backoff:
    """Waits between retries of a failing loop: doubling from `initial_s` to `max_s`, jittered
    (uniform in [half, full]); `reset()` after a success."""

    initial_s: float = 0.5
    max_s: float = 30.0
    _next_s: float = 0.0

    def next_delay_s(self) -> float:
        self._next_s = self.initial_s if self._next_s == 0 else min(self.max_s, self._next_s * 2)
        return self._next_s * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._next_s = 0.0


@dataclass
class Health:
    """What each component reported last; components that never failed are healthy."""

    now: Clock = utc_now
    components: dict[str, ComponentState] = field(default_factory=dict)

    def failed(self, component: str, error: BaseException) -> bool:
        """`component` met `error`; True when it was healthy until now (log it then)."""
        before = self.components.get(component)
        detail = f"{type(error).__name__}: {error}".strip()
        since = before.since if before is not None and not before.ok else self.now()
        self.components[component] = ComponentState(False, detail, since)
        return before is None or before.ok

    def recovered(self, component: str) -> bool:
        """`component` works (again); True when it had been failing."""
        before = self.components.get(component)
        if before is not None and before.ok:
            return False
        self.components[component] = ComponentState(True, "working", self.now())
        return before is not None

    def failing(self) -> dict[str, ComponentState]:
        return {name: state for name, state in self.components.items() if not state.ok}

    def guard(self, component: str, sleep: Sleep, backoff: Backoff | None = None) -> Guard:
        return Guard(component, self, sleep, backoff or Backoff())


class Guard:
    """One component's side of `Health`: `worked()` after a success, `await failed(exc)` after a
    failure (it reports and logs the first failure of a streak, then waits its backoff)."""

    def __init__(self, component: str, health: Health, sleep: Sleep, backoff: Backoff) -> None:
        self.component = component
        self.health = health
        self.backoff = backoff
        self._sleep = sleep

    @property
    def failing(self) -> bool:
        state = self.health.components.get(self.component)
        return state is not None and not state.ok

    def worked(self) -> bool:
        """True when the component had been failing (it recovers now)."""
        self.backoff.reset()
        if not self.health.recovered(self.component):
            return False
        log.info("component.recovered", component=self.component)
        return True

    async def failed(self, error: Exception) -> None:
        if self.health.failed(self.component, error):
            if isinstance(error, StoreUnavailable):
                log.warning(
                    "component.store_unavailable", component=self.component, error=str(error)
                )
            else:
                log.exception("component.failed", component=self.component, error=str(error))
        await self._sleep(self.backoff.next_delay_s())
