"""Signed webhooks: one JSON document POSTed to a URL, signed with a shared secret.

The request carries, besides the JSON body (sent as is: the bytes signed are the bytes sent):

- `<timestamp_header>`: the Unix time of this try, in seconds;
- `<signature_header>`: `v1=` and the hex HMAC-SHA256, keyed with the shared secret, of
  `"<timestamp>." + body`; the receiver recomputes it (`signature`) and refuses a timestamp
  too far from its own clock (`verify`), so a captured request cannot be replayed later;
- `Idempotency-Key`: the same on every try of one webhook (`OutboundSms.extra["idempotency_key"]`,
  else its `message_id`): delivery is at least once, and the receiver drops what it has seen;
- `X-Outreach-Event`: the event's name (`extra["event"]`).

The answer is read like a generic HTTP gateway's (`notifiers.http.classify_gateway_status`):
2xx -> sent; 408, 425, 429, 5xx -> transient (Retry-After honoured); other 4xx -> permanent;
refused connections and time-outs -> transient.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

import aiohttp

from notifiers.base import OutboundSms, SendResult
from notifiers.errors import TransientError, parse_retry_after
from notifiers.http import classify_gateway_status

__all__ = ["WebhookNotifier", "signature", "verify"]

SIGNATURE_VERSION = "v1"


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """`v1=<hex HMAC-SHA256 of "timestamp." + body>`."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def verify(
    secret: bytes,
    *,
    timestamp: str,
    body: bytes,
    signed: str,
    now_s: float,
    tolerance_s: float = 300,
) -> bool:
    """What a receiver checks: the signature matches, and the timestamp is recent."""
    try:
        age_s = abs(now_s - int(timestamp))
    except ValueError:
        return False
    return age_s <= tolerance_s and hmac.compare_digest(signature(secret, timestamp, body), signed)


class WebhookNotifier:
    """POSTs each message's body (a JSON text) to `url`, signed. One aiohttp session, made in
    the running loop at the first send; `close()` closes it."""

    def __init__(
        self,
        *,
        url: str,
        secret: bytes,
        signature_header: str = "X-Outreach-Signature",
        timestamp_header: str = "X-Outreach-Timestamp",
        timeout_s: float = 10.0,
        clock: Callable[[], float] = time.time,
        name: str = "webhook",
    ) -> None:
        if not secret:
            raise ValueError("a webhook needs a non-empty secret")
        self.name = name
        self.url = url
        self.secret = secret
        self.signature_header = signature_header
        self.timestamp_header = timestamp_header
        self.timeout_s = timeout_s
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def headers(self, message: OutboundSms, body: bytes) -> dict[str, str]:
        timestamp = str(int(self.clock()))
        return {
            "Content-Type": "application/json; charset=utf-8",
            self.timestamp_header: timestamp,
            self.signature_header: signature(self.secret, timestamp, body),
            "Idempotency-Key": message.extra.get("idempotency_key", message.message_id),
            "X-Outreach-Event": message.extra.get("event", ""),
        }

    async def send(self, message: OutboundSms) -> SendResult:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        body = message.body.encode("utf-8")
        try:
            async with self._session.post(
                self.url, data=body, headers=self.headers(message, body)
            ) as response:
                detail = (await response.text(errors="replace"))[:200]
                error = classify_gateway_status(
                    response.status,
                    success_statuses=range(200, 300),
                    retry_after_s=parse_retry_after(response.headers.get("Retry-After")),
                    detail=detail,
                    provider=self.name,
                )
        except aiohttp.ClientConnectorError as exc:
            raise TransientError(
                f"cannot connect to the order system: {exc}", ambiguous=False, provider=self.name
            ) from exc
        except TimeoutError as exc:
            raise TransientError(
                "the order system did not answer in time", ambiguous=True, provider=self.name
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransientError(
                f"webhook failed: {type(exc).__name__}: {exc}", ambiguous=True, provider=self.name
            ) from exc
        if error is not None:
            raise error
        return SendResult(
            self.name, message.extra.get("idempotency_key", message.message_id), "sent"
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
