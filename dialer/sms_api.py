"""The SMS routes of the HTTP API.

- `POST /v1/events` (bearer token): an order event -> 202 with what it queued, 200 the same
  answer again, 409 an event_id reused with another body, 422 naming each bad field, 413.
- `POST /v1/sms/twilio/status` (no token; X-Twilio-Signature instead, else 403): a delivery
  report; the message's status only moves forward. 204.
- `POST /v1/sms/twilio/inbound` (no token; signed, else 403): a reply. STOP, TD, 退订,
  UNSUBSCRIBE... (any case, trimmed) opt the number out of SMS and calls; START opts it back
  in. Answers empty TwiML.
- `GET /v1/sms/dead` (`?limit=N`, newest first) and `POST /v1/sms/dead/{id}/replay` (bearer
  token): dead letters.
- `GET /v1/sms/funnel` (bearer token): per order stage, how many messages are in each status
  now; the configured stages first (also those with no message yet), in config order.

The signature is checked against `api.public_url` + the path + the raw query string, as
Twilio signed it (the URL it called), never against the URL this process sees behind a proxy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pydantic
from aiohttp import web

from dialer import outbox_store, sms_stats_store, sms_store
from dialer.api import error_response, mark_public, read_json, unprocessable
from dialer.config import TwilioProvider
from dialer.logs import get_logger, mask_phone
from dialer.phones import InvalidNumber, normalize
from dialer.store import MESSAGE_STATUSES
from notifiers import twilio_signature_valid

if TYPE_CHECKING:
    from dialer.sms import SmsComponent

__all__ = ["OPT_IN_WORDS", "OPT_OUT_WORDS", "WebApplication", "add_sms_routes"]

log = get_logger(__name__)

WebApplication = web.Application

STATUS_PATH = "/v1/sms/twilio/status"
INBOUND_PATH = "/v1/sms/twilio/inbound"
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "TD", "T", "退订"}
)
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
DEAD_LIMIT_MAX = 1000


def add_sms_routes(app: web.Application, component: SmsComponent) -> None:
    routes = _Routes(component)
    app.router.add_post("/v1/events", routes.post_event)
    app.router.add_post(STATUS_PATH, routes.twilio_status)
    app.router.add_post(INBOUND_PATH, routes.twilio_inbound)
    app.router.add_get("/v1/sms/dead", routes.list_dead)
    app.router.add_post("/v1/sms/dead/{id}/replay", routes.replay_dead)
    app.router.add_get("/v1/sms/funnel", routes.funnel)
    mark_public(app, STATUS_PATH)
    mark_public(app, INBOUND_PATH)


class _Routes:
    def __init__(self, component: SmsComponent) -> None:
        self.component = component
        self.store = component.store
        self.intake = component.intake
        public_url = component.settings.api.public_url
        self.public_url = public_url.rstrip("/") if public_url else None
        self.twilio_tokens = [
            provider.auth_token.get_secret_value()
            for provider in component.settings.notifications.providers.values()
            if isinstance(provider, TwilioProvider)
        ]
        self.default_region = component.settings.default_region

    async def post_event(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        try:
            status, answer = await self.intake.accept(body)
        except pydantic.ValidationError as exc:
            return unprocessable(exc)
        return web.json_response(answer, status=status)

    async def _signed_form(self, request: web.Request) -> dict[str, str] | None:
        """The form of a request Twilio signed; None when the signature does not match."""
        form = {key: str(value) for key, value in (await request.post()).items()}
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
        status = form.get("MessageStatus") or form.get("SmsStatus") or ""
        provider_id = form.get("MessageSid") or form.get("SmsSid")
        raw_id = request.rel_url.query.get("message_id", "")
        message_id = int(raw_id) if raw_id.isdigit() else None
        if status not in outbox_store.STATUS_RANK or (message_id is None and not provider_id):
            log.info("sms.status_ignored", status=status)
            return web.Response(status=204)
        report = await outbox_store.record_delivery_status(
            self.store,
            status=status,
            now=self.component.now(),
            message_id=message_id,
            provider_message_id=provider_id,
            error_code=form.get("ErrorCode") or None,
        )
        log.info(
            "sms.status_received",
            status=status,
            message_id=message_id,
            provider_message_id=provider_id,
            applied=report is not None,
        )
        if report is not None:
            self.component.metrics.delivery_reported(status, report.stage, report.provider)
        return web.Response(status=204)

    async def twilio_inbound(self, request: web.Request) -> web.Response:
        form = await self._signed_form(request)
        if form is None:
            return error_response(403, "invalid X-Twilio-Signature")
        word = (form.get("Body") or "").strip().upper()
        try:
            phone = normalize(form.get("From", ""), self.default_region)
        except InvalidNumber:
            phone = None
        if phone is not None and word in OPT_OUT_WORDS:
            await sms_store.opt_out_number(
                self.store, phone, source="sms_reply", now=self.component.now()
            )
            log.info("sms.opted_out", phone=phone, word=word)
        elif phone is not None and word in OPT_IN_WORDS:
            await sms_store.opt_in_number(self.store, phone)
            log.info("sms.opted_in", phone=phone)
        return web.Response(text=EMPTY_TWIML, content_type="text/xml")

    async def list_dead(self, request: web.Request) -> web.Response:
        raw_limit = request.rel_url.query.get("limit", str(DEAD_LIMIT_MAX))
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= DEAD_LIMIT_MAX:
            return error_response(
                422, f"limit must be a whole number from 1 to {DEAD_LIMIT_MAX}", limit=raw_limit
            )
        dead = await outbox_store.list_dead(self.store, limit=int(raw_limit))
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
        counts = await sms_stats_store.funnel(self.store)
        configured = list(self.component.settings.notifications.stages)
        stages = configured + sorted(set(counts) - set(configured))
        rows = []
        for stage in stages:
            by_status = counts.get(stage, dict.fromkeys(MESSAGE_STATUSES, 0))
            rows.append({"stage": stage, "counts": by_status, "total": sum(by_status.values())})
        return web.json_response({"statuses": list(MESSAGE_STATUSES), "stages": rows})

    async def replay_dead(self, request: web.Request) -> web.Response:
        raw_id = request.match_info["id"]
        if not raw_id.isdigit():
            return error_response(404, f"no dead message {raw_id!r}")
        replayed = await outbox_store.replay_dead(self.store, int(raw_id), now=self.component.now())
        if not replayed:
            return error_response(404, f"no dead message {raw_id}")
        log.info("sms.replayed", message_id=int(raw_id))
        self.component.wake()
        return web.json_response({"id": int(raw_id), "status": "queued"})
