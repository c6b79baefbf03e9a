"""`GET /v1/contacts/{phone}/timeline` (bearer token, like all of /v1): every decision about a
phone number, oldest first, with its time and reason (`dialer.timeline`).

The number may be written in any form that parses (`+86 138-1234-5678`, `13812345678` in the
default region); one that does not is a 422 naming the field `phone` and why. `?limit=N` (1 to
2000, default 500) keeps the last N entries."""

from __future__ import annotations

from aiohttp import web

from dialer.http.server import error_response
from dialer.phones import InvalidNumber, normalize
from dialer.store import Store
from dialer.store.timeline_reports import entries_for

__all__ = ["add_timeline_routes"]

DEFAULT_LIMIT = 500
MAX_LIMIT = 2000


def add_timeline_routes(app: web.Application, store: Store, *, default_region: str) -> None:
    async def show_timeline(request: web.Request) -> web.Response:
        raw = request.match_info["phone"]
        try:
            phone = normalize(raw, default_region)
        except InvalidNumber as exc:
            return error_response(
                422, "invalid phone number", fields=[{"field": "phone", "message": str(exc)}]
            )
        text = request.query.get("limit", str(DEFAULT_LIMIT))
        if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
            message = f"an integer from 1 to {MAX_LIMIT}"
            return error_response(
                422, "invalid query", fields=[{"field": "limit", "message": message}]
            )
        entries = await entries_for(store, phone, limit=int(text))
        return web.json_response(
            {"phone": phone, "entries": [entry.as_json() for entry in entries]}
        )

    app.router.add_get("/v1/contacts/{phone}/timeline", show_timeline)
