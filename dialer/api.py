"""The HTTP API (aiohttp): health and readiness now; the /v1 routes join as they are built."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dialer.ami import LinkState


@dataclass(frozen=True)
class Check:
    """One readiness check: a name, and whether it passes with a word on why."""

    name: str
    ok: bool
    detail: str


ReadinessProbe = Callable[[], Awaitable[list[Check]]]


def link_check(state: LinkState) -> Check:
    return Check("ami", state.logged_in, state.detail)


async def healthz(_: web.Request) -> web.Response:
    """Alive: the process answers. Says nothing about the PBX or the store."""
    return web.json_response({"status": "alive"})


def make_readyz(probe: ReadinessProbe) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def readyz(_: web.Request) -> web.Response:
        checks = await probe()
        ready = all(check.ok for check in checks)
        body: dict[str, Any] = {
            "ready": ready,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return web.json_response(body, status=200 if ready else 503)

    return readyz


def make_web_app(probe: ReadinessProbe, *, max_body_bytes: int) -> web.Application:
    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", make_readyz(probe))
    return app
