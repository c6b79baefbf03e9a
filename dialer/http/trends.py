"""`GET /v1/trends` (bearer token or the page's session): per hour of the last 24 h, calls,
answers, abandons per campaign and SMS sent and delivered per stage, for the status page's
charts (`dialer.store.trend_reports`). `?hours=N` (1 to 168) changes the window."""

from __future__ import annotations

from aiohttp import web

from dialer.clock import Clock
from dialer.http.server import error_response
from dialer.store import Store
from dialer.store.trend_reports import hourly_trends

__all__ = ["add_trend_routes"]

MAX_HOURS = 168


def add_trend_routes(app: web.Application, store: Store, *, now: Clock) -> None:
    async def trends(request: web.Request) -> web.Response:
        text = request.query.get("hours", "24")
        if not text.isdigit() or not 1 <= int(text) <= MAX_HOURS:
            message = f"an integer from 1 to {MAX_HOURS}"
            return error_response(
                422, "invalid query", fields=[{"field": "hours", "message": message}]
            )
        return web.json_response(await hourly_trends(store, now=now(), hours=int(text)))

    app.router.add_get("/v1/trends", trends)
