"""Twilio Programmable Messaging through the official SDK's async client.

Three things the stock `AsyncTwilioHttpClient` does not do, done by our subclass of it (the
SDK's documented extension point; see ../shared/notes/twilio-offline-testing.md):

- a real request time-out: the stock client drops its own `timeout` (twilio-python#925) and so
  waits forever on a stalled connection;
- a base URL: every `https://*.twilio.com` origin is rewritten to `base_url` when one is set
  (a local stand-in in tests and demos), also when TWILIO_REGION / TWILIO_EDGE are set;
- response headers: the SDK's exceptions carry none, so the subclass keeps the last response's
  headers (per task) and a 429 or 503 gets its Retry-After;
- its request/response log lines built only when INFO is enabled for its logger;
- the form body encoded once, as bytes: given the SDK's dict, aiohttp tries every payload type,
  then builds a `FormData` (and a multipart writer with a random boundary it never uses) to
  produce the same `urlencode` bytes. The request on the wire is the same.

One `aiohttp` session per notifier, created inside the running loop (build the notifier in a
coroutine, or `async with TwilioNotifier(...)`) and closed by `close()`. The
SDK's own retries (`max_retries`) are never used: they resend a POST after any 5xx.

Every SDK and aiohttp exception is translated into `notifiers.errors` by
`translate_twilio_error`, and only there.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any, Self
from urllib.parse import urlencode

import aiohttp
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from notifiers.base import OutboundSms, SendResult
from notifiers.errors import NotifyError, PermanentError, TransientError, parse_retry_after

__all__ = [
    "NUMBER_ERROR_CODES",
    "OPTED_OUT_ERROR_CODES",
    "PROVIDER_ERROR_CODES",
    "TRANSIENT_ERROR_CODES",
    "TWILIO_DELIVERY_FAILURES",
    "TwilioNotifier",
    "delivery_failure_is_transient",
    "translate_twilio_error",
    "twilio_signature_valid",
]

# Twilio's synchronous (create) error codes, sorted. Twilio says its codes' causes "can change",
# so the HTTP status decides first (429 and 5xx are transient) and this small table only splits
# the 4xx answers. A 4xx code in no table is a permanent provider error.
OPTED_OUT_ERROR_CODES: frozenset[int] = frozenset({21610})  # the recipient replied STOP
NUMBER_ERROR_CODES: frozenset[int] = frozenset(
    {
        21211,  # invalid To
        21408,  # no geo permission for the To's region
        21612,  # To/From pair cannot be routed
        21614,  # To is not a mobile number
    }
)
PROVIDER_ERROR_CODES: frozenset[int] = frozenset(
    {
        20003,  # authentication failed
        21212,  # invalid From
        21606,  # From is not a message-capable number of this account
    }
)
TRANSIENT_ERROR_CODES: frozenset[int] = frozenset({21611})  # From's queue is over 10 hours

# Status-callback ErrorCodes of a failed or undelivered message -> worth sending it again later
# (True) or dead (False). Sources: https://www.twilio.com/docs/api/errors/30001 ... /30010.
TWILIO_DELIVERY_FAILURES: dict[int, bool] = {
    30001: True,  # queue overflow: the sender had too many messages queued; later may pass
    30002: False,  # account suspended: nothing will pass through this account
    30003: True,  # unreachable destination handset: off or out of coverage for now
    30004: False,  # message blocked: the recipient or the carrier blocks it
    30005: False,  # unknown destination handset: the number does not exist
    30006: False,  # landline or unreachable carrier: cannot receive SMS
    30007: False,  # filtered by the carrier: the same content would be filtered again
    30008: True,  # unknown error: Twilio advises to try again
    30009: True,  # missing segment: a part was lost on the way
    30010: False,  # price exceeds the MaxPrice set: our setting, not the network's
}

_TWILIO_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+\.twilio\.com(?=/|$)")

# Headers of the last response the client read in this task (None: no response, e.g. refused).
_last_response_headers: ContextVar[Mapping[str, str] | None] = ContextVar(
    "twilio_last_response_headers", default=None
)


class _TwilioHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]  # twilio is untyped
    """The SDK's async client with a real time-out, an optional base URL, and headers kept."""

    def __init__(self, *, timeout_s: float, base_url: str | None) -> None:
        super().__init__(timeout=timeout_s)  # pool_connections: one shared session
        self.base_url = base_url.rstrip("/") if base_url else None

    async def request(
        self,
        method: str,
        url: str,
        params: Mapping[str, object] | None = None,
        data: Mapping[str, object] | None = None,
        headers: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109  (the SDK's HttpClient.request contract)
        allow_redirects: bool = False,
    ) -> Any:
        if self.base_url:
            url = _TWILIO_ORIGIN.sub(self.base_url, url, count=1)
        response = await super().request(
            method,
            url,
            params=params,
            data=_form_body(data),
            headers=headers,
            auth=auth,
            timeout=timeout or self.timeout,  # a float: the stock client drops it (#925)
            allow_redirects=allow_redirects,
        )
        _last_response_headers.set(response.headers)
        return response

    # The stock client formats its request and response log lines (the headers, 11 lines) even
    # when nobody listens at INFO; these skip that work then, and log the same lines otherwise.
    def log_request(self, kwargs: dict[str, Any]) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            super().log_request(kwargs)

    def log_response(self, status_code: int, response: Any) -> None:
        if self.logger.isEnabledFor(logging.INFO):
            super().log_response(status_code, response)


def _form_body(data: Mapping[str, object] | None) -> Mapping[str, object] | bytes | None:
    """The form the SDK gives, as the bytes aiohttp would make of it (`urlencode`, lists as
    repeated keys); the SDK has already set `Content-Type: application/x-www-form-urlencoded`."""
    if not data:
        return data
    return urlencode(data, doseq=True).encode()


class TwilioNotifier:
    """Sends SMS with Twilio's Messages API.

    Give `from_number` (E.164 or an alphanumeric sender) or `messaging_service_sid` (MG...), or
    both. `status_callback_url` is used for messages that carry none of their own. Build it
    inside the running loop (in a coroutine, or `async with TwilioNotifier(...) as twilio:`)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout_s: float = 10.0,
        status_callback_url: str | None = None,
        name: str = "twilio",
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        if from_number is None and messaging_service_sid is None:
            raise ValueError("give from_number or messaging_service_sid")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, not {timeout_s!r}")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            raise RuntimeError(
                "build TwilioNotifier inside a coroutine (the running event loop): "
                "its HTTP session is bound to that loop"
            ) from None
        self.name = name
        self.from_number = from_number
        self.messaging_service_sid = messaging_service_sid
        self.status_callback_url = status_callback_url
        self.timeout_s = float(timeout_s)
        self._http = _TwilioHttpClient(timeout_s=self.timeout_s, base_url=base_url)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self._messages = self._client.messages  # the SDK builds it once; skip the lookups

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def send(self, message: OutboundSms) -> SendResult:
        arguments: dict[str, str] = {"to": message.to, "body": message.body}
        if self.from_number is not None:
            arguments["from_"] = self.from_number
        if self.messaging_service_sid is not None:
            arguments["messaging_service_sid"] = self.messaging_service_sid
        status_callback = message.status_callback_url or self.status_callback_url
        if status_callback:
            arguments["status_callback"] = status_callback
        _last_response_headers.set(None)
        try:
            created = await self._messages.create_async(**arguments)
        except (TwilioException, aiohttp.ClientError, TimeoutError) as exc:
            headers = _last_response_headers.get()
            retry_after_s = parse_retry_after(headers.get("Retry-After")) if headers else None
            raise translate_twilio_error(
                exc, retry_after_s=retry_after_s, provider=self.name
            ) from exc
        return SendResult(
            provider=self.name,
            provider_message_id=str(created.sid),
            status=str(created.status or "queued"),
        )

    async def close(self) -> None:
        await self._http.close()

    @property
    def closed(self) -> bool:
        session = self._http.session
        return session is None or bool(session.closed)


def translate_twilio_error(
    exc: Exception, *, retry_after_s: float | None = None, provider: str | None = "twilio"
) -> NotifyError:
    """The one place where twilio and aiohttp exceptions become ours.

    - HTTP 429: transient, not ambiguous (Twilio did not process it); 5xx: transient, ambiguous.
    - 4xx by Twilio code: opted out (21610), number (21211, 21408, 21612, 21614), transient
      (21611), anything else permanent for the provider (20003, 21212, 21606, unknown codes).
    - Connection refused or unresolvable host: transient, not ambiguous (nothing was sent).
    - Time-outs and every other connection failure: transient, ambiguous (it may have been sent).
    - Other SDK errors (credentials missing...): permanent for the provider.
    """
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status = int(exc.status)
        code = exc.code
        text = _describe(exc)
        if status == 429:
            return TransientError(
                text, code=code, retry_after_s=retry_after_s, ambiguous=False, provider=provider
            )
        if status >= 500:
            return TransientError(
                text, code=code, retry_after_s=retry_after_s, ambiguous=True, provider=provider
            )
        if code in OPTED_OUT_ERROR_CODES:
            return PermanentError(text, code=code, reason="opted_out", provider=provider)
        if code in NUMBER_ERROR_CODES:
            return PermanentError(text, code=code, reason="number", provider=provider)
        if code in TRANSIENT_ERROR_CODES:
            return TransientError(
                text, code=code, retry_after_s=retry_after_s, ambiguous=False, provider=provider
            )
        return PermanentError(text, code=code, reason="provider", provider=provider)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS: the request never left
        return TransientError(
            f"cannot connect to Twilio: {exc}", ambiguous=False, provider=provider
        )
    if isinstance(exc, TimeoutError):
        return TransientError("Twilio did not answer in time", ambiguous=True, provider=provider)
    if isinstance(exc, aiohttp.ClientError):
        return TransientError(
            f"connection to Twilio failed: {type(exc).__name__}: {exc}",
            ambiguous=True,
            provider=provider,
        )
    if isinstance(exc, TwilioException):
        return PermanentError(
            f"Twilio client error: {type(exc).__name__}: {exc}", provider=provider
        )
    raise TypeError(f"not a Twilio or aiohttp error: {type(exc).__name__}") from exc


def _describe(exc: Any) -> str:
    """A plain message (str(exc) holds ANSI colours when stderr is a terminal)."""
    if isinstance(exc, TwilioServiceException):
        detail = f": {exc.detail}" if exc.detail else ""
        return f"HTTP {exc.status} {exc.title}{detail}"
    return f"HTTP {exc.status}: {exc.msg}"


def twilio_signature_valid(
    auth_token: str, url: str, params: Mapping[str, str], signature: str
) -> bool:
    """Whether `signature` (X-Twilio-Signature) signs this webhook: `url` is the public URL
    Twilio called, byte for byte with its raw query string; `params` the form body."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def delivery_failure_is_transient(code: int | str) -> bool:
    """Whether a status callback's ErrorCode is worth sending the message again later."""
    try:
        return TWILIO_DELIVERY_FAILURES.get(int(code), False)
    except ValueError:
        return False
