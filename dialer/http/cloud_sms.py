"""The callback routes of the mainland China providers: delivery reports and replies.

- `POST /v1/sms/aliyun/{secret}/report` (Aliyun SmsReport, HTTP batch push: a JSON array) and
  `POST /v1/sms/aliyun/{secret}/reply` (SmsUp); answered `{"code": 0, "msg": "接收成功"}`.
- `POST /v1/sms/tencent/{secret}/status` (Tencent's status callback: a JSON array) and
  `POST /v1/sms/tencent/{secret}/reply` (one reply object); answered `{"result": 0, ...}`.

Neither provider signs its pushes, so each route is protected by what it can be given:

- `{secret}`, the provider's `callback_secret`, compared in constant time with every configured
  one of that type (403 when none matches; 404 when no provider of the type has one);
- the provider's `callback_allow_from`, when set: the peer address must be in it (403);
- the callback's own fields: a report moves only a message to the number it names (its id and
  number must both match: a guessed id moves nothing), and a reply signed with another
  signature than the provider's `sign_name` is refused (422 naming `sign`).

A malformed body is a 400 naming it (the provider's retries of it would not help). Reports
move a message forward only and are acted on once per (provider id, number, status): a report
naming a wrong number neither moves the message nor blocks the right one; replies once per
the provider's id of the reply (`SmsService`). 退订, TD, T, STOP... opt the number out.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from aiohttp import web

from dialer.config import AliyunProvider, TencentProvider
from dialer.http.bodies import parse_id, read_json
from dialer.http.server import mark_public_prefix
from dialer.logs import get_logger
from dialer.messaging.ports import CallbackId
from dialer.messaging.service import SmsService
from notifiers import (
    DeliveryReceipt,
    InboundReply,
    parse_aliyun_replies,
    parse_aliyun_reports,
    parse_tencent_reply,
    parse_tencent_statuses,
)

__all__ = ["ALIYUN_PREFIX", "TENCENT_PREFIX", "add_cloud_sms_routes"]

log = get_logger(__name__)

ALIYUN_PREFIX = "/v1/sms/aliyun/"
TENCENT_PREFIX = "/v1/sms/tencent/"
ALIYUN_ACCEPTED = {"code": 0, "msg": "接收成功"}
TENCENT_ACCEPTED = {"result": 0, "errmsg": "OK"}

T = TypeVar("T")
MainlandProvider = AliyunProvider | TencentProvider
Kind = Literal["aliyun", "tencent"]


def add_cloud_sms_routes(app: web.Application, service: SmsService) -> None:
    routes = _CloudRoutes(service)
    app.router.add_post(ALIYUN_PREFIX + "{secret}/report", routes.aliyun_report)
    app.router.add_post(ALIYUN_PREFIX + "{secret}/reply", routes.aliyun_reply)
    app.router.add_post(TENCENT_PREFIX + "{secret}/status", routes.tencent_status)
    app.router.add_post(TENCENT_PREFIX + "{secret}/reply", routes.tencent_reply)
    mark_public_prefix(app, ALIYUN_PREFIX)
    mark_public_prefix(app, TENCENT_PREFIX)


def our_message_id(value: str | None) -> int | None:
    """Our message's row id from the id we sent as OutId / SessionContext ("msg-42")."""
    if value is None or not value.startswith("msg-"):
        return None
    return parse_id(value.removeprefix("msg-"))


class _CloudRoutes:
    def __init__(self, service: SmsService) -> None:
        self.service = service

    def _providers(self, kind: Kind) -> list[tuple[str, MainlandProvider]]:
        providers = self.service.settings.notifications.providers
        return [
            (name, provider)
            for name, provider in providers.items()
            if isinstance(provider, AliyunProvider | TencentProvider) and provider.type == kind
        ]

    def _caller(self, request: web.Request, kind: Kind) -> tuple[str, MainlandProvider] | None:
        """The provider whose secret is in the path, or None (logged)."""
        given = request.match_info["secret"].encode()
        found = None
        for name, provider in self._providers(kind):
            secret = provider.callback_secret
            if secret is None:
                continue
            # every configured secret is compared, in constant time, whatever matched before
            if hmac.compare_digest(secret.get_secret_value().encode(), given) and found is None:
                found = (name, provider)
        if found is None:
            log.warning("sms.callback_refused", reason="bad secret", provider=kind)
            return None
        if found[1].callback_allow_from and not _allowed(request.remote, found[1]):
            log.warning("sms.callback_refused", reason="address not allowed", provider=found[0])
            return None
        return found

    async def _guard(self, request: web.Request, kind: Kind) -> tuple[str, MainlandProvider]:
        configured = [p for _, p in self._providers(kind) if p.callback_secret is not None]
        if not configured:
            raise _refusal(404, f"no {kind} provider has a callback_secret")
        caller = self._caller(request, kind)
        if caller is None:
            raise _refusal(403, "callback refused: wrong secret or source address")
        return caller

    async def aliyun_report(self, request: web.Request) -> web.Response:
        name, _ = await self._guard(request, "aliyun")
        receipts = _parsed(
            await read_json(request), lambda b: parse_aliyun_reports(b, provider=name)
        )
        await self._record(name, receipts)
        return web.json_response(ALIYUN_ACCEPTED)

    async def aliyun_reply(self, request: web.Request) -> web.Response:
        name, provider = await self._guard(request, "aliyun")
        replies = _parsed(
            await read_json(request), lambda b: parse_aliyun_replies(b, provider=name)
        )
        await self._replies(name, provider, replies)
        return web.json_response(ALIYUN_ACCEPTED)

    async def tencent_status(self, request: web.Request) -> web.Response:
        name, _ = await self._guard(request, "tencent")
        receipts = _parsed(
            await read_json(request), lambda b: parse_tencent_statuses(b, provider=name)
        )
        await self._record(name, receipts)
        return web.json_response(TENCENT_ACCEPTED)

    async def tencent_reply(self, request: web.Request) -> web.Response:
        name, provider = await self._guard(request, "tencent")
        reply = _parsed(await read_json(request), lambda b: [parse_tencent_reply(b, provider=name)])
        await self._replies(name, provider, reply)
        return web.json_response(TENCENT_ACCEPTED)

    async def _record(self, name: str, receipts: Sequence[DeliveryReceipt]) -> None:
        for receipt in receipts:
            await self.service.record_delivery(
                receipt.status,
                message_id=our_message_id(receipt.message_id),
                provider_message_id=receipt.provider_message_id,
                error_code=receipt.error_code,
                callback=CallbackId(
                    name, f"{receipt.provider_message_id}:{receipt.phone}:{receipt.status}"
                ),
                phone=receipt.phone,
            )

    async def _replies(
        self, name: str, provider: MainlandProvider, replies: Sequence[InboundReply]
    ) -> None:
        for reply in replies:
            if reply.sign_name and reply.sign_name.strip("【】") != provider.sign_name:
                log.warning("sms.callback_refused", reason="other signature", provider=name)
                raise _refusal(422, "sign is not this provider's sign_name", field="sign")
        for reply in replies:
            await self.service.handle_reply(
                reply.phone, reply.text, callback=CallbackId(name, reply.provider_id)
            )


def _allowed(remote: str | None, provider: MainlandProvider) -> bool:
    if remote is None:
        return False
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net) for net in provider.callback_allow_from)


def _parsed(body: object, parse: Callable[[object], list[T]]) -> list[T]:
    try:
        return parse(body)
    except ValueError as exc:
        raise _refusal(400, f"not a callback body: {exc}", field="(body)") from None


_REFUSALS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest,
    403: web.HTTPForbidden,
    404: web.HTTPNotFound,
    422: web.HTTPUnprocessableEntity,
}


def _refusal(status: int, message: str, **details: object) -> web.HTTPException:
    body = json.dumps({"error": message, **details}, ensure_ascii=False)
    return _REFUSALS[status](text=body, content_type="application/json")
