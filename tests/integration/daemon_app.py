"""The daemon's whole HTTP API, built the way `dialer.app.Daemon.run` builds it (its services on
a real store, every route, the runner's options), served by aiohttp's TestServer in-process: no
PBX (the AMI client is made, never started; the campaign routes work without it)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dialer.app import Daemon, build
from dialer.http.connections import runner_options
from dialer.store import Store
from tests.integration.sms_support import Now, sms_settings

PUBLIC_URL = "https://outreach.example.com"


class DaemonTestServer(TestServer):
    """aiohttp's TestServer running the app as the daemon does: `runner_options`, and handlers
    not cancelled when their client goes away (TestServer's own runner cancels them)."""

    def __init__(self, app: web.Application, *, idle_timeout_s: float) -> None:
        super().__init__(app)
        self.options = runner_options(idle_timeout_s=idle_timeout_s)

    async def _make_runner(
        self, handler_cancellation: bool = False, **kwargs: Any
    ) -> web.AppRunner:
        return web.AppRunner(self.app, handle_signals=False, **self.options, **kwargs)


class DaemonApp:
    """The client of the served API, the daemon, its store and its clock."""

    def __init__(
        self,
        client: TestClient[web.Request, web.Application],
        daemon: Daemon,
        store: Store,
        now: Now,
    ) -> None:
        self.client, self.daemon, self.store, self.now = client, daemon, store, now

    def __repr__(self) -> str:  # what Hypothesis prints of a failing example
        return f"DaemonApp(port={self.client.port})"


@contextlib.asynccontextmanager
async def daemon_app(tmp_path: Path, *, store_url: str | None = None) -> AsyncIterator[DaemonApp]:
    """The API of a daemon configured by `sms_settings` (both campaign kinds, the SMS stages,
    the outbox and Twilio providers, `PUBLIC_URL`), on SQLite in `tmp_path` by default."""
    url = store_url or f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}"
    settings = sms_settings(tmp_path, store_url=url, public_url=PUBLIC_URL)
    now = Now()
    daemon = build(settings)
    daemon.now = now
    store = daemon.store = await Store.open(settings.store.async_url)
    try:
        campaigns, sms = daemon.services(store)
        await campaigns.open()
        app = daemon.web_app(store, campaigns, sms)
        server = DaemonTestServer(app, idle_timeout_s=settings.api.idle_timeout_s)
        async with TestClient(server) as client:
            yield DaemonApp(client, daemon, store, now)
    finally:
        await store.close()
