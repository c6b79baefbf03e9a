"""What the Aliyun and Tencent Cloud SMS stand-ins share: an aiohttp server on 127.0.0.1 with a
lifecycle, a queue of injected faults for the send action, a connection reset, a gate that holds
sends (to count how many are on the wire at once), and the record of accepted messages.

Faults (`Fault`, queued with `fail_next`) apply to the next sends in order:
  status=503          an HTTP error with the provider's error body (5xx: the provider's side)
  throttle=True       the provider's account-level throttling answer
  code="..."          a business error code in the provider's normal answer
  stall=True          never answer (nothing accepted) until `release_stalls()` or stop
  accept_then_stall   accept and record the message, then never answer
  reset=True          read the request, then drop the connection with a TCP RST (nothing kept)
  accept_then_reset   accept and record the message, then reset the connection
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Self

from aiohttp import web

BEIJING = timezone(timedelta(hours=8))


@dataclass
class Fault:
    status: int | None = None
    throttle: bool = False
    code: str | None = None
    message: str = "Injected fault"
    stall: bool = False
    accept_then_stall: bool = False
    reset: bool = False
    accept_then_reset: bool = False

    @property
    def accepts(self) -> bool:
        return self.accept_then_stall or self.accept_then_reset


@dataclass(frozen=True)
class AcceptedSms:
    """One message the stand-in accepted (it would have gone to the phone network)."""

    provider_message_id: str
    phone: str
    sign_name: str
    template_code: str
    params: Any  # Aliyun: dict name -> value; Tencent: list of values
    our_id: str  # Aliyun OutId / Tencent SessionContext
    at: datetime


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int


@dataclass
class SendGate:
    """Counts sends on the wire; when `holding`, each waits for `release_one()`."""

    holding: bool = False
    latency_s: float = 0.0  # each send takes this long (a network's round trip), for benches
    in_flight: int = 0
    max_in_flight: int = 0
    _released: int = 0
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def enter(self) -> None:
        async with self._changed:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self._changed.notify_all()
            if self.holding:
                await self._changed.wait_for(lambda: self._released > 0)
                self._released -= 1
        if self.latency_s:
            await asyncio.sleep(self.latency_s)

    async def leave(self) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    async def release_one(self) -> None:
        async with self._changed:
            self._released += 1
            self._changed.notify_all()

    async def wait_in_flight(self, count: int, timeout_s: float = 5.0) -> None:
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: self.in_flight >= count)


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Wait until `condition()` holds (it is set by other threads: polled), or fail."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110  (threads change it: no event to await)
            await asyncio.sleep(0.002)


class CloudSmsServer:
    """The shared half of a stand-in; subclasses add `routes(app)`."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.accepted: list[AcceptedSms] = []
        self.sends_seen = 0
        self.gate = SendGate()
        self._faults: list[_QueuedFault] = []
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.endpoint = ""
        self.now = lambda: datetime.now(UTC)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application()
        self.routes(app)
        app.on_shutdown.append(self._shutdown)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.endpoint = f"{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _shutdown(self, app: web.Application) -> None:
        self._release.set()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def fail_next(self, fault: Fault, count: int = 1) -> None:
        self._faults.append(_QueuedFault(fault, count))

    def release_stalls(self) -> None:
        self._release.set()

    def next_fault(self) -> Fault | None:
        if not self._faults:
            return None
        queued = self._faults[0]
        queued.remaining -= 1
        if queued.remaining <= 0:
            self._faults.pop(0)
        return queued.fault

    def accepted_for(self, our_id: str) -> list[AcceptedSms]:
        return [sms for sms in self.accepted if sms.our_id == our_id]

    async def stall(self) -> None:
        """Wait until released or stopped (the client has long timed out by then)."""
        await self._release.wait()

    @staticmethod
    def reset_connection(request: web.Request) -> None:
        transport = request.transport
        if transport is None:  # the client is already gone
            raise asyncio.CancelledError
        sock = transport.get_extra_info("socket")
        if sock is not None:  # linger 0: close() sends RST instead of FIN
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        raise asyncio.CancelledError  # nothing more to write; aiohttp drops the handler

    async def play_after_accept(self, fault: Fault | None, request: web.Request) -> None:
        """The second half of an accept-then-stall or accept-then-reset fault."""
        if fault is None:
            return
        if fault.accept_then_reset:
            self.reset_connection(request)
        if fault.accept_then_stall:
            with contextlib.suppress(asyncio.CancelledError):
                await self.stall()
            self.reset_connection(request)
