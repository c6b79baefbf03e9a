"""The HTTP API (aiohttp): health, readiness, and the shared rules of the /v1 routes.

- `/v1/*` needs `Authorization: Bearer <api.token>`, or the status page's session cookie
  (`SESSION_COOKIE`, set by `POST /login`: the id of a server-side session, see
  `dialer.http.sessions`): 401 otherwise (compared in constant time; a header that is not
  UTF-8 is just wrong). An unsafe request (POST...) authenticated by the cookie alone must also
  send `X-Outreach-Page: 1`, which the page's own fetch does and a form posted from another
  site cannot: 403 otherwise.
- A `Content-Length` over `api.max_body_bytes` gets 413 before anything is read (a chunked body
  when it grows past it: aiohttp's `client_max_size`); a body must arrive within
  `api.body_timeout_s` (`dialer.http.bodies`).
- A body is read with `read_json` / `read_form` (`dialer.http.bodies`): a bad one gets a 4xx
  naming what is wrong. An invalid body gets 422 naming each bad field: use
  `unprocessable(validation_error)`.
- Every error answer is JSON (`{"error": ...}`), also aiohttp's own (no route: 404, a method
  the route does not take: 405, a chunked body past the limit: 413). An answer given without
  reading the whole body closes the connection after it (`Connection: close`).
- `/healthz`, `/readyz` and `/metrics` (Prometheus' text format) need no token.
- The store unavailable (down, locked by a long import): 503 with `Retry-After`, nothing kept.
- The features' routes are in `dialer.http.sms`, `.campaigns`, `.status_page`; `dialer.app`
  adds them to the application `make_web_app` returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from aiohttp import web
from aiohttp.typedefs import Middleware

from dialer.health import StoreUnavailable
from dialer.http.bodies import BODY_TIMEOUT_KEY, DEFAULT_BODY_TIMEOUT_S, read_json
from dialer.http.sessions import Sessions, token_matches
from dialer.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

__all__ = [
    "PAGE_HEADER",
    "SESSION_COOKIE",
    "Check",
    "error_response",
    "make_web_app",
    "mark_public",
    "mark_public_prefix",
    "read_json",
    "token_matches",
    "unprocessable",
]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Check:
    """One readiness check: a name, and whether it passes with a word on why."""

    name: str
    ok: bool
    detail: str


ReadinessProbe = Callable[[], Awaitable[list[Check]]]
MetricsPage = Callable[[], Awaitable[bytes]]
"""The exposition `GET /metrics` answers with (`dialer.app`)."""


def error_response(status: int, message: str, **details: Any) -> web.Response:
    return web.json_response({"error": message, **details}, status=status)


def unprocessable(error: pydantic.ValidationError) -> web.Response:
    """422 naming each bad field, as `a.b.0.c: message`."""
    return web.json_response(invalid_body(error), status=422)


def invalid_body(error: pydantic.ValidationError) -> dict[str, Any]:
    """The answer `unprocessable` sends (also one event's result in a batch of events)."""
    fields = [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "(body)",
            "message": item["msg"],
        }
        for item in error.errors(include_url=False, include_context=False, include_input=False)
    ]
    return {"error": "invalid request body", "fields": fields}


SESSION_COOKIE = "outreach_session"
"""The status page's cookie: a session id (HttpOnly, SameSite=Strict, Path=/; Secure over TLS)."""
PAGE_HEADER = "X-Outreach-Page"
"""Sent by the status page's fetch; required with the cookie on unsafe methods (no CSRF)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_auth(api_token: str, sessions: Sessions | None) -> Middleware:
    expected = f"Bearer {api_token}"

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/") and not _is_public(request):
            given = request.headers.get("Authorization", "")
            if not token_matches(given, expected):
                refused = await _refuse_cookie(request, sessions)
                if refused is not None:
                    return refused
        return await handler(request)

    return require_token


async def _refuse_cookie(request: web.Request, sessions: Sessions | None) -> web.Response | None:
    """Without a good bearer header: None when the session cookie lets the request through,
    else the answer (401 no or a bad session, 403 a cookie POST without PAGE_HEADER)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if sessions is None or await sessions.check(cookie) != "valid":
        return error_response(
            401, "missing or wrong bearer token", hint="Authorization: Bearer <api.token>"
        )
    if request.method not in SAFE_METHODS and request.headers.get(PAGE_HEADER) != "1":
        return error_response(
            403,
            f"a {request.method} authenticated by the status page cookie must send "
            f"the header {PAGE_HEADER}: 1",
            missing_header=PAGE_HEADER,
        )
    return None


_KEPT_HEADERS = ("Allow", "Retry-After", "Connection")


@web.middleware
async def shape_answers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own error answers (text) as JSON, like ours; and `Connection: close` when
    the request's body was left unread (a client must not reuse a connection that the server
    closes once it has discarded that body, or failed to decode it)."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            _close_if_body_unread(request, exc)
            raise
        text = (exc.text or "").removeprefix(f"{exc.status}: ").strip()
        response = error_response(exc.status, text or exc.reason.lower())
        for name in _KEPT_HEADERS:
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
    _close_if_body_unread(request, response)
    return response


def _close_if_body_unread(request: web.Request, response: web.StreamResponse) -> None:
    if request.body_exists and not request.content.is_eof() and not response.prepared:
        response.force_close()


def body_size_limit(max_body_bytes: int) -> Middleware:
    """413 at once for a `Content-Length` over the limit: the body is never read."""

    @web.middleware
    async def refuse_large_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_body_bytes:
            response = error_response(
                413,
                f"the body of {length} bytes is over the limit of {max_body_bytes}",
                field="Content-Length",
            )
            response.force_close()
            return response
        return await handler(request)

    return refuse_large_bodies


PUBLIC_ROUTE_KEY = web.AppKey("public_paths", set[str])
PUBLIC_PREFIX_KEY = web.AppKey("public_prefixes", set[str])


def _is_public(request: web.Request) -> bool:
    """Routes authenticated another way (Twilio's signed callbacks; the secret in the path of
    Aliyun's and Tencent's) are listed as public."""
    if request.path in request.app[PUBLIC_ROUTE_KEY]:
        return True
    return any(request.path.startswith(prefix) for prefix in request.app[PUBLIC_PREFIX_KEY])


def mark_public(app: web.Application, path: str) -> None:
    """Exempt `path` from the bearer token (it must check its own signature)."""
    app[PUBLIC_ROUTE_KEY].add(path)


def mark_public_prefix(app: web.Application, prefix: str) -> None:
    """Exempt every path under `prefix` (ending in "/") from the bearer token (its routes must
    check their own secret)."""
    if not prefix.endswith("/"):
        raise ValueError(f"a public prefix ends with '/': {prefix!r}")
    app[PUBLIC_PREFIX_KEY].add(prefix)


async def healthz(_: web.Request) -> web.Response:
    """Alive: the process answers. Says nothing about the PBX or the store."""
    return web.json_response({"status": "alive"})


def make_readyz(probe: ReadinessProbe) -> Handler:
    async def readyz(_: web.Request) -> web.Response:
        checks = await probe()
        ready = all(check.ok for check in checks)
        body: dict[str, Any] = {
            "ready": ready,
            "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
        }
        return web.json_response(body, status=200 if ready else 503)

    return readyz


def make_metrics(page: MetricsPage) -> Handler:
    async def metrics(_: web.Request) -> web.Response:
        """Prometheus' text format; no token, like /healthz (bind the API to a private address)."""
        response = web.Response(body=await page())
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response

    return metrics


STORE_RETRY_AFTER_S = 5


@web.middleware
async def store_unavailable(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The store is down or locked: 503 with Retry-After (the request may be sent again; what
    it carried was not stored)."""
    try:
        return await handler(request)
    except StoreUnavailable as exc:
        response = error_response(
            503, "the store is unavailable; send the request again later", detail=str(exc)
        )
        response.headers["Retry-After"] = str(STORE_RETRY_AFTER_S)
        return response


def make_web_app(
    probe: ReadinessProbe,
    *,
    max_body_bytes: int,
    api_token: str,
    metrics_page: MetricsPage | None = None,
    sessions: Sessions | None = None,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
) -> web.Application:
    """The app with health, readiness, metrics and the shared rules; without `sessions`, the
    session cookie opens nothing (only the bearer token does)."""
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[
            shape_answers,
            store_unavailable,  # outside the auth: a session is looked up in the store
            body_size_limit(max_body_bytes),
            bearer_auth(api_token, sessions),
        ],
    )
    app[PUBLIC_ROUTE_KEY] = set()
    app[PUBLIC_PREFIX_KEY] = set()
    app[BODY_TIMEOUT_KEY] = body_timeout_s
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", make_readyz(probe))
    if metrics_page is not None:
        app.router.add_get("/metrics", make_metrics(metrics_page))
    return app
