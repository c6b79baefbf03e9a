"""A local stand-in for the order system's webhook endpoint (aiohttp, real HTTP).

It checks every request as a careful receiver would, on its own (not with our code): the
HMAC-SHA256 of "timestamp.body" with the shared secret, and a timestamp within five minutes of
its clock. It counts deliveries by `Idempotency-Key` (a duplicate is counted, answered 200 and
not acted on twice), and can be told to fail the next requests (`fail_next`: a list of HTTP
statuses to answer before accepting again) or to hold every request (`stalling`) until
`release()`."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import Counter
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

TOLERANCE_S = 300


class OrderSystem:
    def __init__(self, secret: str, *, clock: Any = time.time) -> None:
        self.secret = secret.encode("utf-8")
        self.clock = clock
        self.accepted: list[dict[str, Any]] = []  # first delivery of each key, in order
        self.deliveries: Counter[str] = Counter()  # key -> how many times it came
        self.refused: list[str] = []  # why requests were refused (bad signature, stale...)
        self.fail_next: list[int] = []
        self.stalling = False  # hold every request until `release()`
        self.stalled = 0  # requests held so far
        self._released = asyncio.Event()
        self.server: TestServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hooks/outreach"))

    def release(self) -> None:
        """Answer the held requests (each one then counts as delivered) and hold no more."""
        self.stalling = False
        self._released.set()

    def duplicates(self) -> int:
        return sum(count - 1 for count in self.deliveries.values())

    def events(self, name: str) -> list[dict[str, Any]]:
        return [document for document in self.accepted if document["event"] == name]

    async def __aenter__(self) -> OrderSystem:
        app = web.Application()
        app.router.add_post("/hooks/outreach", self._receive)
        self.server = TestServer(app, host="127.0.0.1")
        await self.server.start_server()
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        await self.server.close()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        timestamp = request.headers.get("X-Outreach-Timestamp", "")
        signed = request.headers.get("X-Outreach-Signature", "")
        expected = (
            "v1="
            + hmac.new(self.secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        )
        if not hmac.compare_digest(expected, signed):
            self.refused.append("signature")
            return web.Response(status=401, text="bad signature")
        if not timestamp.isdigit() or abs(self.clock() - int(timestamp)) > TOLERANCE_S:
            self.refused.append("timestamp")
            return web.Response(status=401, text="stale timestamp")
        if self.fail_next:
            return web.Response(status=self.fail_next.pop(0), text="try later")
        if self.stalling:  # the sender may be killed meanwhile: the request still counts
            self.stalled += 1
            await self._released.wait()
        key = request.headers["Idempotency-Key"]
        self.deliveries[key] += 1
        if self.deliveries[key] == 1:
            self.accepted.append(json.loads(body))
        return web.json_response({"ok": True})
