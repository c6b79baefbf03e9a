"""A generic HTTP SMS gateway stand-in: records each request and answers from a script.

    async with FakeSmsGateway() as gateway:
        gateway.script(Reply(503, retry_after="7"), Reply(200, json={"data": {"id": "g-1"}}))
        ... post to gateway.url ...
        gateway.received[0].json()

When the script is empty it answers 200 `{"id": "gw-<n>"}` (n counts the requests). A reply
may also stall (until the server stops) or wait `delay_s` first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import parse_qsl

from aiohttp import web


@dataclass
class Reply:
    """One scripted answer. `json` (default `{"id": "gw-<n>"}`) unless `text` is given."""

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    retry_after: str | None = None
    delay_s: float = 0.0
    stall: bool = False


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    raw: bytes

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "")

    def json(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.raw.decode("utf-8"), keep_blank_values=True))


class FakeSmsGateway:
    def __init__(self, *, path: str = "/sms/send", host: str = "127.0.0.1", port: int = 0) -> None:
        self.path = path
        self.host = host
        self.port = port
        self.received: list[ReceivedRequest] = []
        self._script: list[Reply] = []
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @property
    def url(self) -> str:
        return self.base_url + self.path

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these replies, in order."""
        self._script.extend(replies)

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_route("*", self.path, self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(
            ReceivedRequest(request.method, request.path, dict(request.headers), raw)
        )
        reply = self._script.pop(0) if self._script else Reply()
        if reply.stall or reply.delay_s:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(None if reply.stall else reply.delay_s):
                    await self._stopping.wait()
        headers = dict(reply.headers)
        if reply.retry_after is not None:
            headers["Retry-After"] = reply.retry_after
        if reply.text is not None:
            return web.Response(status=reply.status, text=reply.text, headers=headers)
        body = reply.json if reply.json is not None else {"id": f"gw-{len(self.received)}"}
        return web.json_response(body, status=reply.status, headers=headers)
