"""A local stand-in for Twilio's Messages API (2010-04-01), for offline tests. aiohttp + twilio.

Written from ../shared/notes/twilio-offline-testing.md (Appendix A): the same routes, error
bodies and magic numbers, with more ways to fail and typed for our tooling.

    POST /2010-04-01/Accounts/{sid}/Messages.json        create (form body, Basic auth sid:token)
    GET  /2010-04-01/Accounts/{sid}/Messages/{msid}.json fetch
    POST /_fake/faults   {"status": 503, "count": 2} | {"delay_s": 2} | {"reset": true} ...
    GET  /_fake/messages ; POST /_fake/reset

Faults (`Fault`, queued with `fail_next`) apply to the next creates in order: an HTTP status
with Twilio's JSON error body or an HTML body, a Retry-After header, a stall (until released or
the server stops), a delay before answering normally, or a connection reset (RST, mid-request).

Magic numbers, as Twilio's test credentials (docs/iam/test-credentials):
  To   +15005550001 -> 21211, 0002 -> 21612, 0003 -> 21408, 0004 -> 21610, 0009 -> 21614
  From +15005550001 -> 21212, 0007 -> 21606, 0008 -> 21611   (+15005550006 is a valid From)
Stand-in only: To +1500555300N (N=1..8) -> 201, then a failed/undelivered callback with 3000N;
  To +15005550429 -> 429/20429, 0500 -> 500/20500, 0503 -> 503 HTML.

A create that carries `StatusCallback` gets signed (X-Twilio-Signature) form POSTs to that URL
for each status after the first: sent, then delivered (or failed/undelivered).

In-process: `async with FakeTwilioServer() as fake: ... fake.base_url ...`.
Standalone: `python -m tests.fakes.twilio_server 8099`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import secrets
import socket
import struct
import sys
from dataclasses import asdict, dataclass
from email.utils import formatdate
from typing import Any, Self

from aiohttp import ClientError, ClientSession, ClientTimeout, web
from twilio.request_validator import RequestValidator

API_VERSION = "2010-04-01"
DEFAULT_AUTH_TOKEN = "test_auth_token"
VALID_FROM = "+15005550006"

MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
MAGIC_FROM: dict[str, int] = {"+15005550001": 21212, "+15005550007": 21606, "+15005550008": 21611}
ERROR_TEXT: dict[int, str] = {
    20003: "Authenticate",
    21211: "The 'To' number is not a valid phone number.",
    21212: "The 'From' number is not a valid phone number.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the "
    "'To' number.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21606: "The 'From' phone number provided is not a valid message-capable Twilio phone number.",
    21610: "Attempt to send to unsubscribed recipient",
    21611: "This 'From' number has exceeded the maximum number of queued messages",
    21612: "The 'To' phone number is not currently reachable using the 'From' phone number "
    "via SMS.",
    21614: "'To' number is not a valid mobile number",
}
DELIVERY_FAILURE: dict[str, int] = {f"+150055530{i:02d}": 30000 + i for i in range(1, 9)}


@dataclass
class Fault:
    """How the next create goes wrong. Without `status`, `stall` or `reset`, the create then
    proceeds normally (after `delay_s`): the way a slow Twilio still sends what timed out."""

    status: int | None = None  # answer with this HTTP status...
    code: int | None = None  # ...and this Twilio code in the JSON body (default 20000 + status)
    message: str = "Injected fault"
    html: bool = False  # an HTML body instead of Twilio's JSON (as Twilio's edge sends a 503)
    retry_after: str | None = None  # a Retry-After header
    delay_s: float = 0.0  # wait before answering (cut short when the server stops)
    stall: bool = False  # never answer, until `release_stalls()` or the server stops
    reset: bool = False  # read the request, then drop the connection with a TCP RST


@dataclass(frozen=True)
class ReceivedCreate:
    """One create request as the server read it."""

    account_sid: str
    form: dict[str, str]
    headers: dict[str, str]
    peer: tuple[Any, ...]


@dataclass(frozen=True)
class SentCallback:
    """One status callback the server POSTed, with what the receiver answered."""

    url: str
    params: dict[str, str]
    signature: str
    response_status: int | None
    error: str | None = None


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int


def twilio_error(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """Twilio's legacy error body, as the 2010 Messages API sends it."""
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return web.json_response(body, status=status, headers=headers)


class FakeTwilioServer:
    """The Messages API on 127.0.0.1, with injectable faults and signed status callbacks."""

    def __init__(
        self,
        *,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        host: str = "127.0.0.1",
        port: int = 0,
        callback_delay_s: float = 0.0,
    ) -> None:
        self.auth_token = auth_token
        self.host = host
        self.port = port
        self.callback_delay_s = callback_delay_s
        self.validator = RequestValidator(auth_token)
        self.messages: dict[str, dict[str, Any]] = {}
        self.received: list[ReceivedCreate] = []
        self.peers: set[tuple[Any, ...]] = set()
        self.callbacks: list[SentCallback] = []
        self._faults: list[_QueuedFault] = []
        self._callback_posted = asyncio.Condition()
        self._release = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._callback_session: ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"
        return self

    async def stop(self) -> None:
        self._stopping.set()
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()  # runs _cleanup below

    async def _cleanup(self, app: web.Application) -> None:
        """Stop pending status callbacks and close their session (also when run standalone)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._callback_session is not None:
            await self._callback_session.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ test controls

    def fail_next(self, fault: Fault, count: int = 1) -> None:
        """Apply `fault` to the next `count` creates (after faults queued before it)."""
        self._faults.append(_QueuedFault(fault, count))

    def release_stalls(self) -> None:
        """Let stalled creates end (they answer 503)."""
        self._release.set()

    @property
    def creates_seen(self) -> int:
        """How many create requests reached the server, whatever it answered."""
        return len(self.received)

    async def wait_for_callbacks(self, count: int, timeout_s: float = 5.0) -> list[SentCallback]:
        """Wait until `count` status callbacks were POSTed (and answered or failed)."""
        async with asyncio.timeout(timeout_s), self._callback_posted:
            await self._callback_posted.wait_for(lambda: len(self.callbacks) >= count)
        return self.callbacks

    def reset(self) -> None:
        self.messages.clear()
        self.received.clear()
        self.peers.clear()
        self.callbacks.clear()
        self._faults.clear()
        self._release.clear()

    # ------------------------------------------------------------------ routes

    def app(self) -> web.Application:
        app = web.Application()
        account = f"/{API_VERSION}/Accounts/{{sid}}"
        app.router.add_post(account + "/Messages.json", self._create)
        app.router.add_get(account + "/Messages/{msid}.json", self._fetch)
        app.router.add_post("/_fake/faults", self._add_fault)
        app.router.add_get("/_fake/messages", self._list_messages)
        app.router.add_post("/_fake/reset", self._reset)
        app.on_shutdown.append(self._shutdown)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _shutdown(self, app: web.Application) -> None:
        self._stopping.set()
        self._release.set()

    def _authorized(self, request: web.Request, sid: str) -> bool:
        header = request.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            decoded = base64.b64decode(header[6:], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        user, _, password = decoded.partition(":")
        return (user == sid or user.startswith("SK")) and password == self.auth_token

    def _next_fault(self) -> Fault | None:
        if not self._faults:
            return None
        queued = self._faults[0]
        queued.remaining -= 1
        if queued.remaining <= 0:
            self._faults.pop(0)
        return queued.fault

    async def _wait(self, event: asyncio.Event, timeout_s: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    async def _create(self, request: web.Request) -> web.StreamResponse:
        sid = request.match_info["sid"]
        form = {key: str(value) for key, value in (await request.post()).items()}
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.received.append(
            ReceivedCreate(sid, form, dict(request.headers), tuple(peer) if peer else ())
        )
        if peer:
            self.peers.add(tuple(peer))
        if not self._authorized(request, sid):
            return twilio_error(401, 20003, ERROR_TEXT[20003])

        fault = self._next_fault()
        if fault is not None:
            answer = await self._apply(fault, request)
            if answer is not None:
                return answer

        to, from_, service = form.get("To"), form.get("From"), form.get("MessagingServiceSid")
        for missing, code in ((not to, 21604), (not (from_ or service), 21603)):
            if missing:
                return twilio_error(400, code, ERROR_TEXT[code])
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return twilio_error(400, 21602, ERROR_TEXT[21602])
        assert to is not None
        if to in MAGIC_TO:
            return twilio_error(400, MAGIC_TO[to], ERROR_TEXT[MAGIC_TO[to]])
        if from_ in MAGIC_FROM:
            code = MAGIC_FROM[from_]
            return twilio_error(400, code, ERROR_TEXT[code])
        if to == "+15005550429":
            return twilio_error(429, 20429, "Too Many Requests")
        if to == "+15005550500":
            return twilio_error(500, 20500, "Internal Server Error")
        if to == "+15005550503":
            return _html(503)
        return self._created(sid, form)

    async def _apply(self, fault: Fault, request: web.Request) -> web.StreamResponse | None:
        """Play a fault; None means the create goes on normally."""
        if fault.reset:
            transport = request.transport
            assert transport is not None
            sock = transport.get_extra_info("socket")
            if sock is not None:  # linger 0: close() sends RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            transport.abort()
            raise asyncio.CancelledError  # nothing more to write; aiohttp drops the handler
        if fault.stall:
            await self._wait(self._release, None)
            return _html(503)
        if fault.delay_s:
            await self._wait(self._stopping, fault.delay_s)
        if fault.status is None:
            return None
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
        if fault.html:
            return _html(fault.status, headers)
        code = fault.code if fault.code is not None else 20000 + fault.status
        return twilio_error(fault.status, code, fault.message, headers)

    def _created(self, sid: str, form: dict[str, str]) -> web.Response:
        msid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True).replace("GMT", "+0000")
        service = form.get("MessagingServiceSid")
        uri = f"/{API_VERSION}/Accounts/{sid}/Messages/{msid}"
        message: dict[str, Any] = {
            "account_sid": sid,
            "api_version": API_VERSION,
            "body": form.get("Body", ""),
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if service else "1",
            "price": None,
            "price_unit": "USD",
            "sid": msid,
            "status": "accepted" if service else "queued",
            "to": form["To"],
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "uri": f"{uri}.json",
        }
        self.messages[msid] = message
        callback_url = form.get("StatusCallback")
        if callback_url:
            task = asyncio.create_task(self._send_callbacks(callback_url, message))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return web.json_response(message, status=201)

    async def _fetch(self, request: web.Request) -> web.Response:
        sid = request.match_info["sid"]
        if not self._authorized(request, sid):
            return twilio_error(401, 20003, ERROR_TEXT[20003])
        message = self.messages.get(request.match_info["msid"])
        if message is None:
            return twilio_error(404, 20404, f"The requested resource {request.path} was not found")
        return web.json_response(message)

    async def _send_callbacks(self, url: str, message: dict[str, Any]) -> None:
        code = DELIVERY_FAILURE.get(message["to"])
        steps: list[tuple[str, int | None]]
        if code in (30001, 30002):
            steps = [("failed", code)]
        elif code is not None:
            steps = [("sent", None), ("undelivered", code)]
        else:
            steps = [("sent", None), ("delivered", None)]
        if self._callback_session is None:
            self._callback_session = ClientSession(timeout=ClientTimeout(total=15))
        for status, error_code in steps:
            if self.callback_delay_s:
                await asyncio.sleep(self.callback_delay_s)
            message.update(status=status, error_code=error_code or message["error_code"])
            params = {
                "AccountSid": message["account_sid"],
                "ApiVersion": API_VERSION,
                "From": message["from"] or "",
                "To": message["to"],
                "MessageSid": message["sid"],
                "SmsSid": message["sid"],
                "MessageStatus": status,
                "SmsStatus": status,
            }
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if error_code:
                params["ErrorCode"] = str(error_code)
            signature = self.validator.compute_signature(url, params)
            try:
                async with self._callback_session.post(
                    url, data=params, headers={"X-Twilio-Signature": signature}
                ) as response:
                    await response.read()
                sent = SentCallback(url, params, signature, response.status)
            except (ClientError, TimeoutError) as exc:
                sent = SentCallback(url, params, signature, None, repr(exc))
            async with self._callback_posted:
                self.callbacks.append(sent)
                self._callback_posted.notify_all()

    async def _add_fault(self, request: web.Request) -> web.Response:
        spec = dict(await request.json())
        count = int(spec.pop("count", 1))
        self.fail_next(Fault(**spec), count)
        return web.json_response({"queued": len(self._faults)})

    async def _list_messages(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "messages": list(self.messages.values()),
                "creates_seen": self.creates_seen,
                "callbacks": [asdict(callback) for callback in self.callbacks],
            }
        )

    async def _reset(self, request: web.Request) -> web.Response:
        self.reset()
        return web.json_response({"ok": True})


def _html(status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=f"<html><body>{status} Service Unavailable</body></html>",
        content_type="text/html",
        headers=headers,
    )


def main(argv: list[str]) -> None:
    port = int(argv[1]) if len(argv) > 1 else 8099
    web.run_app(FakeTwilioServer().app(), host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(sys.argv)
