"""The SMS routes of the HTTP API.

- `POST /v1/events` (bearer token): an order event -> 202 with what it queued, 200 the same
  answer again, 409 an event_id reused with another body, 422 naming each bad field, 413.
  A JSON array of up to 500 events is a batch, each answered on its own
  (`dialer.http.event_batches`).
- `POST /v1/sms/twilio/status` (no token; X-Twilio-Signature instead, else 403): a delivery
  report; the message's status only moves forward. 204 (422 for a `message_id` that is no id).
- `POST /v1/sms/twilio/inbound` (no token; signed, else 403): a reply. STOP, TD, 退订,
  UNSUBSCRIBE... (any case, trimmed) opt the number out of SMS and calls; START opts it back
  in. Answers empty TwiML.
- Both act once per callback (its `MessageSid`; with the status for a delivery report): a
  signed callback replayed later answers the same and changes nothing (`SmsService`).
- `/v1/sms/aliyun/{secret}/...` and `/v1/sms/tencent/{secret}/...`: the mainland providers'
  reports and replies (`dialer.http.cloud_sms`).
- `GET /v1/sms/dead` (`?limit=N`, newest first) and `POST /v1/sms/dead/{id}/replay` (bearer
  token): dead letters.
- `GET /v1/sms/held` (bearer token, `?limit=N`): messages the daily limit per number holds
  back until the next day (`notifications.daily_limit_per_number`), the soonest released first.
- `GET /v1/sms/funnel` (bearer token): per order stage, how many messages are in each status
  now; the configured stages first (also those with no message yet), in config order.

The signature is checked against `api.public_url` + the path + the raw query string, as
Twilio signed it (the URL it called), never against the URL this process sees behind a proxy.
"""

from __future__ import annotations

from typing import Any

import pydantic
from aiohttp import web

from dialer.config import TwilioProvider
from dialer.http.bodies import parse_id, read_form, read_json
from dialer.http.cloud_sms import add_cloud_sms_routes
from dialer.http.event_batches import answer_batch
from dialer.http.server import error_response, mark_public, unprocessable
from dialer.logs import get_logger, mask_phone
from dialer.messaging.ports import MESSAGE_STATUSES, CallbackId
from dialer.messaging.service import SmsService
from dialer.store import Store, sms_reports
from notifiers import twilio_signature_valid

__all__ = ["add_sms_routes"]

log = get_logger(__name__)

STATUS_PATH = "/v1/sms/twilio/status"
INBOUND_PATH = "/v1/sms/twilio/inbound"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
DEAD_LIMIT_MAX = 1000
TWILIO = "twilio"


def add_sms_routes(app: web.Application, service: SmsService, reports: Store) -> None:
    """The SMS routes; `reports` is the store the read-only views (funnel, dead) read."""
    routes = _Routes(service, reports)
    app.router.add_post("/v1/events", routes.post_event)
    app.router.add_post(STATUS_PATH, routes.twilio_status)
    app.router.add_post(INBOUND_PATH, routes.twilio_inbound)
    app.router.add_get("/v1/sms/dead", routes.list_dead)
    app.router.add_get("/v1/sms/held", routes.list_held)
    app.router.add_post("/v1/sms/dead/{id}/replay", routes.replay_dead)
    app.router.add_get("/v1/sms/funnel", routes.funnel)
    mark_public(app, STATUS_PATH)
    mark_public(app, INBOUND_PATH)
    add_cloud_sms_routes(app, service)


class _Routes:
    def __init__(self, service: SmsService, reports: Store) -> None:
        self.service = service
        self.reports = reports
        settings = service.settings
        public_url = settings.api.public_url
        self.public_url = public_url.rstrip("/") if public_url else None
        self.twilio_tokens = [
            provider.auth_token.get_secret_value()
            for provider in settings.notifications.providers.values()
            if isinstance(provider, TwilioProvider)
        ]

    async def post_event(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if isinstance(body, list):
            return await answer_batch(self.service, body)
        try:
            status, answer = await self.service.accept_event(body)
        except pydantic.ValidationError as exc:
            return unprocessable(exc)
        return web.json_response(answer, status=status)

    async def _signed_form(self, request: web.Request) -> dict[str, str] | None:
        """The form of a request Twilio signed; None when the signature does not match."""
        form = await read_form(request)
        signature = request.headers.get("X-Twilio-Signature", "")
        if self.public_url is None:
            log.warning("sms.callback_refused", reason="api.public_url is not configured")
            return None
        url = self.public_url + request.rel_url.raw_path_qs
        if any(twilio_signature_valid(token, url, form, signature) for token in self.twilio_tokens):
            return form
        log.warning("sms.callback_refused", reason="bad signature", path=request.path)
        return None

    async def twilio_status(self, request: web.Request) -> web.Response:
        form = await self._signed_form(request)
        if form is None:
            return error_response(403, "invalid X-Twilio-Signature")
        raw_id = request.rel_url.query.get("message_id", "")
        message_id = parse_id(raw_id) if raw_id else None
        if raw_id and message_id is None:
            return error_response(422, "message_id must be a message id", field="message_id")
        status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        sid = form.get("MessageSid") or form.get("SmsSid")
        await self.service.record_delivery(
            status,
            message_id=message_id,
            provider_message_id=sid,
            error_code=form.get("ErrorCode") or None,
            callback=CallbackId(TWILIO, f"{sid}:{status}") if sid else None,
        )
        return web.Response(status=204)

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        form = await self._signed_form(request)
        if form is None:
            return error_response(403, "invalid X-Twilio-Signature")
        sid = form.get("MessageSid") or form.get("SmsMessageSid") or form.get("SmsSid")
        await self.service.handle_reply(
            form.get("From", ""),
            form.get("Body") or "",
            callback=CallbackId(TWILIO, sid) if sid else None,
        )
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def list_held(self, request: web.Request) -> web.Response:
        limit = _limit(request)
        if isinstance(limit, web.Response):
            return limit
        held = await sms_reports.list_held(self.reports, now=self.service.now(), limit=limit)
        items = [
            {
                "id": message.id,
                "order_id": message.order_id,
                "stage": message.stage,
                "phone": mask_phone(message.phone),
                "held_until": message.held_until.isoformat(),
                "reason": message.reason,
            }
            for message in held
        ]
        return web.json_response({"held": items})

    async def list_dead(self, request: web.Request) -> web.Response:
        limit = _limit(request)
        if isinstance(limit, web.Response):
            return limit
        dead = await sms_reports.list_dead(self.reports, limit=limit)
        items: list[dict[str, Any]] = [
            {
                "id": message.id,
                "order_id": message.order_id,
                "stage": message.stage,
                "phone": mask_phone(message.phone),
                "reason": message.last_error,
                "error_code": message.error_code,
                "attempts": message.attempts,
                "dead_at": message.updated_at.isoformat(),
            }
            for message in dead
        ]
        return web.json_response({"dead": items})

    async def funnel(self, _: web.Request) -> web.Response:
        counts = await sms_reports.funnel(self.reports)
        configured = list(self.service.settings.notifications.stages)
        stages = configured + sorted(set(counts) - set(configured))
        rows = []
        for stage in stages:
            by_status = counts.get(stage, dict.fromkeys(MESSAGE_STATUSES, 0))
            rows.append({"stage": stage, "counts": by_status, "total": sum(by_status.values())})
        return web.json_response({"statuses": list(MESSAGE_STATUSES), "stages": rows})

    async def replay_dead(self, request: web.Request) -> web.Response:
        raw_id = request.match_info["id"]
        message_id = parse_id(raw_id)
        if message_id is None:
            return error_response(404, f"no dead message {raw_id!r}", field="id")
        if not await self.service.replay_dead(message_id):
            return error_response(404, f"no dead message {message_id}", field="id")
        return web.json_response({"id": message_id, "status": "queued"})


def _limit(request: web.Request) -> int | web.Response:
    """The `?limit=N` of a listing (default and at most DEAD_LIMIT_MAX), or its 422."""
    raw_limit = request.rel_url.query.get("limit", str(DEAD_LIMIT_MAX))
    limit = parse_id(raw_limit)
    if limit is None or not 1 <= limit <= DEAD_LIMIT_MAX:
        return error_response(
            422,
            f"limit must be a whole number from 1 to {DEAD_LIMIT_MAX}",
            field="limit",
            limit=raw_limit,
        )
    return limit
