"""Connections to the API: how many at once, how long a silent one stays, what aiohttp logs.

- `LimitedSite` listens like aiohttp's `TCPSite`, but holds at most `api.max_connections` at
  once: a connection past the cap gets `503` and is closed at once (logged once per burst,
  `http.connections_capped`), so slow or idle clients cannot use up the open-file limit.
- `runner_options`: the `web.AppRunner` settings: a connection that has not sent a whole
  request's headers within `api.idle_timeout_s` of opening, or of its last answer, is closed
  (aiohttp's keep-alive time-out, which runs from the connection's start and stops only when
  a request's headers are in: the header-read and the idle time-out in one); a body left
  unread (a 401, 408 or 413 answered before it) is discarded for at most `LINGERING_S`, then
  the connection is closed; no access log;
  and aiohttp's server log, where a malformed request or a client gone mid-request is one
  warning line (`http.request_refused`) instead of an ERROR with a traceback: anyone can send
  those, and a flood of them must not flood the log. Errors of ours still log as errors.

The body's own time-out is `api.body_timeout_s` (`dialer.http.bodies.read_body`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from dialer.logs import get_logger

__all__ = ["LimitedSite", "runner_options"]

log = get_logger(__name__)

LINGERING_S = 2.0
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/json\r\n"
    b"Content-Length: 41\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b'{"error": "too many connections; retry"}\n'
)


class _ClientFaultsAsWarnings(logging.LoggerAdapter[logging.Logger]):
    """aiohttp's server logger: what a client did wrong is one warning line, not a traceback."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        error = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if isinstance(error, HttpProcessingError | web.RequestPayloadError | ConnectionError):
            log.warning("http.request_refused", error=type(error).__name__, reason=_reason(error))
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return msg, kwargs


def _reason(error: BaseException) -> str:
    """aiohttp's message for a client's fault, on one line ("400, message: ..." trimmed)."""
    text = " ".join(str(error).split())
    text = re.sub(r"^\d{3}, message: ?", "", text)
    return text[:200] or type(error).__name__


def runner_options(*, idle_timeout_s: float) -> dict[str, Any]:
    """Keyword arguments for `web.AppRunner` (and aiohttp's `TestServer`)."""
    return {
        "keepalive_timeout": idle_timeout_s,
        "lingering_time": LINGERING_S,
        "access_log": None,
        "logger": _ClientFaultsAsWarnings(logging.getLogger("aiohttp.server")),
    }


class _ConnectionCount:
    def __init__(self, max_connections: int) -> None:
        self.max_connections = max_connections
        self.open = 0
        self.refused = 0  # since the cap was last reached

    def admit(self) -> bool:
        if self.open < self.max_connections:
            if self.refused:
                log.info("http.connections_admitted", refused=self.refused, open=self.open)
                self.refused = 0
            self.open += 1
            return True
        if not self.refused:
            log.warning("http.connections_capped", max_connections=self.max_connections)
        self.refused += 1
        return False

    def closed(self) -> None:
        self.open -= 1


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, which tells the count when it ends."""

    def __init__(self, inner: asyncio.Protocol, count: _ConnectionCount) -> None:
        self.inner = inner
        self.count = count

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.count.closed()
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class _Refused(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(REFUSED)
        transport.close()


class LimitedSite(web.BaseSite):
    """A TCP site holding at most `max_connections` connections at once."""

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, max_connections: int
    ) -> None:
        super().__init__(runner)
        self._web_runner = runner
        self._host = host
        self._port = port
        self._count = _ConnectionCount(max_connections)
        self._listener: asyncio.Server | None = None

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def open_connections(self) -> int:
        return self._count.open

    def _protocol(self) -> asyncio.Protocol:
        server = self._web_runner.server
        assert server is not None  # the runner is set up before a site starts
        if not self._count.admit():
            return _Refused()
        return _Counted(server(), self._count)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(self._protocol, self._host, self._port)

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()
        await super().stop()
