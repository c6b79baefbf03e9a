"""HTTP routes of the campaigns (bearer token, like all of /v1):

- `GET /v1/campaigns`: every campaign's status.
- `GET /v1/campaigns/{name}`: one campaign: state (running, paused, disabled), contacts by
  state, attempts by outcome and by disposition, calls in flight, next due time.
- `POST /v1/campaigns/{name}/contacts`: a JSON list of `{phone, name?, timezone?, priority?,
  context?}` (or `{"contacts": [...]}`); 200 with one result per row (`added`, `merged`,
  `finished` (already called; not again) or `refused` with the reason) and the counts.
- `POST /v1/campaigns/{name}/pause` and `.../resume`: a paused campaign places no new call;
  calls in flight finish.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from dialer.calling.contact_import import counts
from dialer.calling.service import CampaignService
from dialer.http.bodies import read_json
from dialer.http.server import error_response

__all__ = ["add_campaign_routes"]

MAX_CONTACTS_PER_REQUEST = 1000
OPEN_TIMEOUT_S = 10.0


def add_campaign_routes(app: web.Application, service: CampaignService) -> None:
    async def runner_name(request: web.Request) -> str:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            await service.opened.wait()  # the campaign rows exist once the component started
        name = request.match_info["name"]
        if name not in service.runners:
            known = ", ".join(service.runners) or "none"
            raise web.HTTPNotFound(
                text=json.dumps({"error": f"no campaign {name!r}; defined: {known}"}),
                content_type="application/json",
            )
        return name

    async def list_campaigns(_: web.Request) -> web.Response:
        async with asyncio.timeout(OPEN_TIMEOUT_S):
            await service.opened.wait()
        statuses = [await service.status(name) for name in service.runners]
        return web.json_response({"campaigns": statuses})

    async def show_campaign(request: web.Request) -> web.Response:
        return web.json_response(await service.status(await runner_name(request)))

    async def add_contacts(request: web.Request) -> web.Response:
        name = await runner_name(request)
        body: Any = await read_json(request)
        if isinstance(body, dict) and isinstance(body.get("contacts"), list):
            body = body["contacts"]
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            return error_response(
                422,
                "invalid request body",
                fields=[{"field": "(body)", "message": "a list of contact objects"}],
            )
        if len(body) > MAX_CONTACTS_PER_REQUEST:
            return error_response(
                422,
                "invalid request body",
                fields=[
                    {"field": "(body)", "message": f"at most {MAX_CONTACTS_PER_REQUEST} contacts"}
                ],
            )
        results = await service.add_contacts(name, enumerate(body, start=1))
        return web.json_response(
            {"campaign": name, **counts(results), "rows": [r.as_dict() for r in results]}
        )

    async def pause(request: web.Request) -> web.Response:
        name = await runner_name(request)
        await service.set_paused(name, True)
        return web.json_response(await service.status(name))

    async def resume(request: web.Request) -> web.Response:
        name = await runner_name(request)
        await service.set_paused(name, False)
        return web.json_response(await service.status(name))

    app.router.add_get("/v1/campaigns", list_campaigns)
    app.router.add_get("/v1/campaigns/{name}", show_campaign)
    app.router.add_post("/v1/campaigns/{name}/contacts", add_contacts)
    app.router.add_post("/v1/campaigns/{name}/pause", pause)
    app.router.add_post("/v1/campaigns/{name}/resume", resume)
