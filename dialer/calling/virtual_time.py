"""An asyncio event loop on a virtual clock: the daemon's own asyncio code runs a day in seconds.

`VirtualTimeLoop.time()` is virtual. Whenever no callback is ready, the loop does not wait: it
polls its selector with timeout 0 and moves the clock on by the time it would have waited, that
is to the next timer. Everything built on `loop.time()` and timers works unchanged and in order:
`asyncio.sleep`, `asyncio.timeout`, `wait_for`, `call_later` / `call_at`, Events, Queues, locks,
TaskGroups, cancellation. `run_virtual(main())` runs a coroutine on such a loop; a
`VirtualClock` reads the virtual time as an aware UTC datetime for code that takes an injected
`now() -> datetime`.

Real I/O is refused, not waited for: its answer would take no virtual time, so it could never
arrive "in time". Sockets, servers, DNS, pipes, subprocesses, executors (threads) and signal
handlers raise `VirtualTimeError`; put a fake behind the port instead (`simworld`). When every
task waits and no timer is set, nothing can ever happen: the loop raises `VirtualTimeDeadlock`
where a real one would hang.

    VirtualTimeError     real I/O asked of a virtual-time loop
      VirtualTimeDeadlock  every task waits and no timer is set
"""

from __future__ import annotations

import asyncio
import math
import selectors
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, TypeVarTuple

if TYPE_CHECKING:
    from _typeshed import FileDescriptorLike

__all__ = [
    "VirtualClock",
    "VirtualTimeDeadlock",
    "VirtualTimeError",
    "VirtualTimeLoop",
    "run_virtual",
]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class VirtualTimeError(RuntimeError):
    """Real I/O asked of a virtual-time loop (module docstring)."""


class VirtualTimeDeadlock(VirtualTimeError):
    """Every task waits, no callback is ready and no timer is set: nothing can happen."""


class _Clock:
    def __init__(self, start: float) -> None:
        self.now = start


class _JumpingSelector(selectors.BaseSelector):
    """A real selector (for the loop's own wake-up pipe) polled without waiting; the wait it was
    asked for moves the virtual clock instead."""

    def __init__(self, clock: _Clock) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock

    def register(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: FileDescriptorLike) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(
        self, fileobj: FileDescriptorLike, events: int, data: Any = None
    ) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:
            raise VirtualTimeDeadlock(
                "every task waits and no timer is set: in virtual time nothing can happen"
                " (real I/O, threads and signals are not supported)"
            )
        later = self._clock.now + timeout
        self._clock.now = later if later > self._clock.now else math.nextafter(later, math.inf)
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[FileDescriptorLike, selectors.SelectorKey]:
        return self._real.get_map()


def _refuse(what: str) -> NoReturn:
    raise VirtualTimeError(f"{what} is real I/O; a virtual-time loop cannot wait for it")


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose `time()` starts at `start` and jumps to the next timer when idle."""

    def __init__(self, *, start: float = 0.0) -> None:
        self._virtual_clock = _Clock(start)
        super().__init__(selector=_JumpingSelector(self._virtual_clock))

    def time(self) -> float:
        return self._virtual_clock.now

    # Real I/O, refused (module docstring). The loop's own wake-up pipe uses the private
    # `_add_reader`, which stays.

    def add_reader(
        self, fd: FileDescriptorLike, callback: Callable[[*Ts], Any], *args: *Ts
    ) -> NoReturn:
        _refuse("add_reader")

    def add_writer(
        self, fd: FileDescriptorLike, callback: Callable[[*Ts], Any], *args: *Ts
    ) -> NoReturn:
        _refuse("add_writer")

    def add_signal_handler(
        self, sig: int, callback: Callable[[*Ts], object], *args: *Ts
    ) -> NoReturn:
        _refuse("a signal handler")

    def run_in_executor(self, executor: Any, func: Callable[[*Ts], T], *args: *Ts) -> NoReturn:
        _refuse("an executor (a thread)")

    async def getaddrinfo(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("getaddrinfo")

    async def getnameinfo(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("getnameinfo")

    async def create_connection(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("create_connection")

    async def create_server(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("create_server")

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("create_datagram_endpoint")

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("create_unix_connection")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("create_unix_server")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("connect_accepted_socket")

    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("connect_read_pipe")

    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("connect_write_pipe")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("a subprocess")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("a subprocess")

    async def sock_recv(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_recv")

    async def sock_recv_into(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_recv_into")

    async def sock_recvfrom(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_recvfrom")

    async def sock_recvfrom_into(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_recvfrom_into")

    async def sock_sendall(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_sendall")

    async def sock_sendto(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_sendto")

    async def sock_connect(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_connect")

    async def sock_accept(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_accept")

    async def sock_sendfile(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("sock_sendfile")


def run_virtual(main: Coroutine[Any, Any, T], *, start: float = 0.0) -> T:
    """Run `main` to completion on a fresh `VirtualTimeLoop` whose clock starts at `start`, and
    return its result (like `asyncio.run`, in virtual time)."""
    factory: Callable[[], asyncio.AbstractEventLoop] = lambda: VirtualTimeLoop(start=start)  # noqa: E731
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


@dataclass(frozen=True)
class VirtualClock:
    """`now()`: the loop's time as an aware UTC datetime, `anchor` being loop time `start_s`.

    Reads `loop`, or the running loop when None (so it must be called from inside it). Give it
    as the injected `now` of code that wants one:
    `VirtualClock(datetime(2025, 3, 3, 8, tzinfo=UTC))`.
    """

    anchor: datetime
    start_s: float = 0.0
    loop: asyncio.AbstractEventLoop | None = None

    def __post_init__(self) -> None:
        if self.anchor.tzinfo is None or self.anchor.utcoffset() is None:
            raise ValueError(f"anchor must be an aware datetime, got {self.anchor!r}")

    def now(self) -> datetime:
        loop = self.loop if self.loop is not None else asyncio.get_running_loop()
        return (self.anchor + timedelta(seconds=loop.time() - self.start_s)).astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now()
