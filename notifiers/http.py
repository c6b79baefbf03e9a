"""A generic HTTP SMS gateway: one request per message; its HTTP status says what happened.

This is how a gateway without an SDK of ours is plugged in (a Chinese SMS gateway, a company's
own): the URL and method, a JSON or form body whose fields are `str.format` templates over the
message, fixed headers, an auth header, and which statuses mean success, a permanent or a
transient failure.

Placeholders in the body templates: `{to}` (also `{phone}`), `{body}`, `{message_id}`, and any
key of `OutboundSms.extra` (`{order_id}`, `{stage}`...).

How an answer is read (`classify_gateway_status`), in this order:
success_statuses -> sent; number_statuses -> permanent, about the number; permanent_statuses ->
permanent, about the provider; transient_statuses -> transient (ambiguous when >= 500). A status
in no list: 4xx or 3xx -> permanent (provider), 5xx -> transient and ambiguous, anything else
-> transient and ambiguous (we cannot tell whether it was sent). Retry-After is honoured on
transient answers. A refused connection is transient and not ambiguous; a time-out or a dropped
connection is transient and ambiguous.

The provider's message id is read from a JSON answer: `message_id_field` (a dotted path such as
`data.id`), or else the first of `id`, `message_id`, `sid`; when there is none, our own
`message_id` stands in.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import Collection, Mapping
from typing import Any, Literal, Self

import aiohttp

from notifiers.base import OutboundSms, SendResult
from notifiers.errors import NotifyError, PermanentError, TransientError, parse_retry_after

__all__ = [
    "DEFAULT_BODY",
    "HttpGatewayNotifier",
    "classify_gateway_status",
    "render_body",
]

BodyFormat = Literal["json", "form"]

DEFAULT_BODY: Mapping[str, str] = {"to": "{to}", "text": "{body}", "id": "{message_id}"}
DEFAULT_SUCCESS_STATUSES = (200, 201, 202)
DEFAULT_PERMANENT_STATUSES = (400, 401, 403, 404, 422)
DEFAULT_TRANSIENT_STATUSES = (408, 425, 429, 500, 502, 503, 504)
_MESSAGE_ID_FIELDS = ("id", "message_id", "sid")
_DETAIL_CHARS = 200


def render_body(templates: Mapping[str, str], message: OutboundSms) -> dict[str, str]:
    """Each body field's template filled from the message. KeyError names a missing value."""
    values: dict[str, str] = {
        **message.extra,
        "to": message.to,
        "phone": message.to,
        "body": message.body,
        "message_id": message.message_id,
    }
    return {field: template.format_map(values) for field, template in templates.items()}


def classify_gateway_status(
    status: int,
    *,
    success_statuses: Collection[int] = DEFAULT_SUCCESS_STATUSES,
    permanent_statuses: Collection[int] = DEFAULT_PERMANENT_STATUSES,
    transient_statuses: Collection[int] = DEFAULT_TRANSIENT_STATUSES,
    number_statuses: Collection[int] = (),
    retry_after_s: float | None = None,
    detail: str = "",
    provider: str | None = None,
) -> NotifyError | None:
    """None when `status` means sent; else the error it means (see the module docstring)."""
    if status in success_statuses:
        return None
    text = f"gateway answered HTTP {status}" + (f": {detail}" if detail else "")
    if status in number_statuses:
        return PermanentError(text, code=status, reason="number", provider=provider)
    if status in permanent_statuses:
        return PermanentError(text, code=status, reason="provider", provider=provider)
    if status in transient_statuses:
        return TransientError(
            text,
            code=status,
            retry_after_s=retry_after_s,
            ambiguous=status >= 500,
            provider=provider,
        )
    if 300 <= status < 500:
        return PermanentError(text, code=status, reason="provider", provider=provider)
    return TransientError(
        text, code=status, retry_after_s=retry_after_s, ambiguous=True, provider=provider
    )


class HttpGatewayNotifier:
    """Sends each message as one HTTP request to a gateway. One `aiohttp` session, created in
    the running loop (build it inside a coroutine, or with `async with`), closed by
    `close()`."""

    def __init__(
        self,
        *,
        url: str,
        method: str = "POST",
        body_format: BodyFormat = "json",
        body: Mapping[str, str] = DEFAULT_BODY,
        headers: Mapping[str, str] | None = None,
        auth_header: str | None = None,
        auth_header_name: str = "Authorization",
        success_statuses: Collection[int] = DEFAULT_SUCCESS_STATUSES,
        permanent_statuses: Collection[int] = DEFAULT_PERMANENT_STATUSES,
        transient_statuses: Collection[int] = DEFAULT_TRANSIENT_STATUSES,
        number_statuses: Collection[int] = (),
        timeout_s: float = 10.0,
        message_id_field: str | None = None,
        name: str = "http",
    ) -> None:
        if body_format not in ("json", "form"):
            raise ValueError(f"body_format must be 'json' or 'form', not {body_format!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
        for field, template in body.items():
            _check_template(field, template)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "build HttpGatewayNotifier inside a coroutine (the running event loop): "
                "its HTTP session is bound to that loop"
            ) from None
        self.name = name
        self.url = url
        self.method = method.upper()
        self.body_format: BodyFormat = body_format
        self.body = dict(body)
        self.success_statuses = frozenset(success_statuses)
        self.permanent_statuses = frozenset(permanent_statuses)
        self.transient_statuses = frozenset(transient_statuses)
        self.number_statuses = frozenset(number_statuses)
        self.timeout_s = float(timeout_s)
        self.message_id_field = message_id_field
        self._headers = dict(headers or {})
        if auth_header is not None:
            self._headers[auth_header_name] = auth_header
        if body_format == "json" and not any(k.lower() == "content-type" for k in self._headers):
            self._headers["Content-Type"] = "application/json; charset=utf-8"
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s), raise_for_status=False
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, message: OutboundSms) -> SendResult:
        try:
            payload = render_body(self.body, message)
        except KeyError as exc:
            raise PermanentError(
                f"body template uses {{{exc.args[0]}}}, which the message does not carry",
                code="template",
                provider=self.name,
            ) from None
        data: bytes | dict[str, str]
        if self.body_format == "json":
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        else:
            data = payload
        try:
            async with self._session.request(
                self.method, self.url, data=data, headers=self._headers, allow_redirects=False
            ) as response:
                status = response.status
                text = await response.text(errors="replace")
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate_transport_error(exc, self.name) from exc
        error = classify_gateway_status(
            status,
            success_statuses=self.success_statuses,
            permanent_statuses=self.permanent_statuses,
            transient_statuses=self.transient_statuses,
            number_statuses=self.number_statuses,
            retry_after_s=parse_retry_after(retry_after),
            detail=" ".join(text.split())[:_DETAIL_CHARS],
            provider=self.name,
        )
        if error is not None:
            raise error
        return SendResult(
            provider=self.name,
            provider_message_id=self._provider_message_id(text) or message.message_id,
            status="accepted",
        )

    async def close(self) -> None:
        await self._session.close()

    @property
    def closed(self) -> bool:
        return self._session.closed

    def _provider_message_id(self, text: str) -> str | None:
        try:
            document = json.loads(text)
        except ValueError:
            return None
        paths = [self.message_id_field] if self.message_id_field else list(_MESSAGE_ID_FIELDS)
        for path in paths:
            value: Any = document
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)
        return None


def _translate_transport_error(exc: Exception, provider: str) -> TransientError:
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS: the request never left
        return TransientError(
            f"cannot connect to the gateway: {exc}", ambiguous=False, provider=provider
        )
    if isinstance(exc, TimeoutError):
        return TransientError(
            "the gateway did not answer in time", ambiguous=True, provider=provider
        )
    return TransientError(
        f"connection to the gateway failed: {type(exc).__name__}: {exc}",
        ambiguous=True,
        provider=provider,
    )


def _check_template(field: str, template: str) -> None:
    """Only plain named placeholders: no positional `{}` and no `{to.attr}` / `{to[0]}`."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"body field {field!r}: bad template {template!r}: {exc}") from None
    for _, name, _, _ in parsed:
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(
                f"body field {field!r}: placeholder {{{name}}} must be a plain name "
                "such as {to}, {body} or {message_id}"
            )
