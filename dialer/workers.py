"""Workers: the daemons sharing one store, each alive while its lease is renewed.

A worker is one `dialer run` process. It has an id (`worker.id`, default the host name and a
random suffix per start, so a restart is a new worker), the roles it plays (`api`,
`dispatcher`, `campaigns`), and the PBX it dials through (`worker.pbx`).

Its row in the store (`WorkerRegistry`) holds its lease: renewed every `heartbeat_s`, good for
`lease_s`. Work a worker claims (a contact being dialled, a message `sending`, a campaign's
runner slot) carries its id. A worker whose lease ran out is *declared dead*, in one statement,
by the first live worker to notice; only then may others take its work, and a dead worker can
never renew: it finds its lease taken, stops claiming, says so and stops (`Membership`). A
worker stopping cleanly declares itself dead, so its work moves at once. Lease times are the
database's clock on PostgreSQL, so the hosts' clocks need not agree. A worker that could not
renew for a while itself (the store was down, for every worker alike) declares nobody dead at
its first heartbeat after: the others renew meanwhile, so an outage of the store kills no one.

On SQLite one worker serves a store (a second is refused at start), so every other row is dead.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from dialer.clock import Sleep, sleep_unless_stopped
from dialer.logs import get_logger

__all__ = [
    "ROLES",
    "Membership",
    "Role",
    "WorkerIdTaken",
    "WorkerIdentity",
    "WorkerRegistry",
    "default_worker_id",
]

log = get_logger(__name__)

Role = Literal["api", "dispatcher", "campaigns"]
ROLES: tuple[Role, ...] = ("api", "dispatcher", "campaigns")


def default_worker_id() -> str:
    """The host name and a random suffix: a new worker per start."""
    return f"{socket.gethostname()}-{secrets.token_hex(3)}"


@dataclass(frozen=True)
class WorkerIdentity:
    id: str
    roles: tuple[Role, ...] = ROLES
    pbx: str = "default"
    """Which PBX this worker's AMI reaches; campaigns may be limited to one (`pbx:`)."""
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)

    def plays(self, role: Role) -> bool:
        return role in self.roles


class WorkerIdTaken(Exception):
    """Another live worker has this id (a copy of a config with a fixed `worker.id`)."""

    def __init__(self, worker_id: str, *, host: str, pid: int, lease_until: str) -> None:
        super().__init__(
            f"worker id {worker_id!r} is in use by pid {pid} on {host} (its lease runs until "
            f"{lease_until}); give each worker its own worker.id"
        )
        self.host = host
        self.pid = pid


class WorkerRegistry(Protocol):
    """The workers' rows in the store (`dialer.store.workers`)."""

    async def register(
        self, worker: WorkerIdentity, *, lease_s: float, replace_live: bool = False
    ) -> None:
        """Write this worker's row with a fresh lease. Raises `WorkerIdTaken` when a live
        worker has the same id, unless `replace_live` (it is this worker's earlier life)."""

    async def renew(self, worker_id: str, *, lease_s: float) -> bool:
        """Extend the lease; False when this worker was declared dead meanwhile."""

    async def declare_expired(self) -> list[str]:
        """Declare dead every worker whose lease ran out; their ids."""

    async def stop(self, worker_id: str) -> None:
        """A clean stop: declared dead now, so its work moves at once."""


TakeOver = Callable[[Sequence[str]], Awaitable[None]]


class Membership:
    """Keeps this worker's lease and notices dead ones.

    `run(stop)` renews the lease every `heartbeat_s` and declares expired workers dead, then
    calls every `on_tick` callback (with the workers just declared dead, often none) so the
    components take over work and re-read shared state. The callbacks run beside the heartbeat,
    never in its way: taking over a dead worker's calls can take longer than a lease, and a
    worker busy with that must not be declared dead for it (one round of callbacks at a time;
    the workers declared dead meanwhile are told at the next). When the lease is found taken,
    `lost` is set and `stop` too: the daemon stops claiming and exits. Not `shared` (the only
    worker of a SQLite store), it only calls the callbacks: nobody else could declare it dead."""

    def __init__(
        self,
        registry: WorkerRegistry,
        worker: WorkerIdentity,
        *,
        lease_s: float,
        heartbeat_s: float,
        sleep: Sleep = asyncio.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        shared: bool = True,
    ) -> None:
        if heartbeat_s * 2 > lease_s:
            raise ValueError(f"heartbeat_s {heartbeat_s} must be at most half of lease_s {lease_s}")
        self.registry = registry
        self.worker = worker
        self.lease_s = lease_s
        self.heartbeat_s = heartbeat_s
        self.lost = asyncio.Event()
        self._sleep = sleep
        self._monotonic = monotonic
        self.shared = shared  # False: the only worker of its store (SQLite): nothing to renew
        self._renewed_at: float | None = None
        self._on_tick: list[TakeOver] = []
        self._untold: list[str] = []  # declared dead, not yet told to the callbacks
        self._telling: asyncio.Task[None] | None = None

    def on_tick(self, callback: TakeOver) -> None:
        self._on_tick.append(callback)

    async def join(self) -> None:
        """Register; a live row of the same id left by this host's dead process is replaced
        (its work is this worker's own); any other live holder of the id raises."""
        try:
            await self.registry.register(self.worker, lease_s=self.lease_s)
        except WorkerIdTaken as taken:
            if taken.host != self.worker.host or _running(taken.pid, self.worker.pid):
                raise
            await self.registry.register(self.worker, lease_s=self.lease_s, replace_live=True)
        self._renewed_at = self._monotonic()
        log.info(
            "worker.joined",
            worker_id=self.worker.id,
            roles=list(self.worker.roles),
            pbx=self.worker.pbx,
            lease_s=self.lease_s,
        )

    async def tick(self) -> bool:
        """One heartbeat, then the callbacks (awaited). False: the lease was taken."""
        alive = await self.renew()
        if alive:
            await self.tell()
        return alive

    async def renew(self) -> bool:
        """Renew the lease and declare the expired dead (kept for `tell`). False: the lease
        was taken (this worker must stop)."""
        if not self.shared:
            return True
        if not await self.registry.renew(self.worker.id, lease_s=self.lease_s):
            return False
        renewed_before, self._renewed_at = self._renewed_at, self._monotonic()
        # After a silence of its own (the store was unreachable, for the others too, likely),
        # a worker first lets the others renew: it declares nobody dead this time.
        if renewed_before is not None and self._renewed_at - renewed_before <= 2 * self.heartbeat_s:
            dead = await self.registry.declare_expired()
            for worker_id in dead:
                log.warning("worker.declared_dead", dead_worker=worker_id, lease_s=self.lease_s)
            self._untold += dead
        return True

    async def tell(self) -> None:
        """Call every callback with the workers declared dead since the last time; when one
        fails, they are told again next time (taking over is idempotent)."""
        dead, self._untold = self._untold, []
        try:
            for callback in self._on_tick:
                await callback(dead)
        except Exception:
            self._untold = dead + self._untold
            raise

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat until `stop`; then a clean stop (declared dead by itself)."""
        try:
            while not stop.is_set():
                try:
                    alive = await self.renew()
                except Exception as exc:  # the store is down: the lease may run out meanwhile
                    log.warning("worker.heartbeat_failed", reason=str(exc) or type(exc).__name__)
                else:
                    if not alive:
                        log.error(
                            "worker.lease_lost",
                            worker_id=self.worker.id,
                            message="this worker's lease ran out and it was declared dead; "
                            "its work was given to others: it stops claiming and exits",
                        )
                        self.lost.set()
                        stop.set()
                        return
                    if self._telling is None or self._telling.done():
                        self._telling = asyncio.create_task(self._tell_logged())
                await sleep_unless_stopped(stop, self.heartbeat_s, self._sleep)
        finally:
            if self._telling is not None:
                self._telling.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._telling

    async def _tell_logged(self) -> None:
        try:
            await self.tell()
        except Exception as exc:
            log.warning("worker.tick_failed", reason=str(exc) or type(exc).__name__)

    async def leave(self) -> None:
        if self.lost.is_set():
            return
        try:
            await self.registry.stop(self.worker.id)
        except Exception as exc:  # it expires instead, after lease_s
            log.warning("worker.leave_failed", reason=str(exc) or type(exc).__name__)


def _running(pid: int, own_pid: int) -> bool:
    """Whether another process `pid` runs on this host."""
    if pid == own_pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
