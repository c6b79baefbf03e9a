"""The HTTP API (aiohttp): health, readiness, and the shared rules of the /v1 routes.

- `/v1/*` needs `Authorization: Bearer <api.token>`, or the status page's session cookie
  carrying the same token (`SESSION_COOKIE`, set by `POST /login`, see `dialer.http.status_page`):
  401 otherwise (compared in constant time). An unsafe request (POST...) authenticated by the
  cookie alone must also send `X-Outreach-Page: 1`, which the page's own fetch does and a
  form posted from another site cannot: 403 otherwise.
- A body over `api.max_body_bytes` gets 413 (aiohttp's `client_max_size`).
- An invalid body gets 422 naming each bad field: use `unprocessable(validation_error)`.
- `/healthz`, `/readyz` and `/metrics` (Prometheus' text format) need no token.
- The store unavailable (down, locked by a long import): 503 with `Retry-After`, nothing kept.
- The features' routes are in `dialer.http.sms`, `.campaigns`, `.status_page`; `dialer.app`
  adds them to the application `make_web_app` returns.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic
from aiohttp import web
from aiohttp.typedefs import Middleware

from dialer.health import StoreUnavailable
from dialer.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE

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


async def read_json(request: web.Request) -> Any:
    """The request body as JSON; a 400 naming the problem when it is not JSON."""
    try:
        return await request.json(loads=json.loads)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"body is not valid JSON: {exc}"}),
            content_type="application/json",
        ) from None


SESSION_COOKIE = "outreach_session"
"""The status page's cookie: it carries the API token (HttpOnly, SameSite=Strict, Path=/)."""
PAGE_HEADER = "X-Outreach-Page"
"""Sent by the status page's fetch; required with the cookie on unsafe methods (no CSRF)."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_matches(given: str, api_token: str) -> bool:
    """Constant-time comparison of a token given by a client with `api.token`."""
    return hmac.compare_digest(given.encode(), api_token.encode())


def bearer_auth(api_token: str) -> Middleware:
    expected = f"Bearer {api_token}".encode()

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/") and not _is_public(request):
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                refused = _refuse_cookie(request, api_token)
                if refused is not None:
                    return refused
        return await handler(request)

    return require_token


def _refuse_cookie(request: web.Request, api_token: str) -> web.Response | None:
    """Without a good bearer header: None when the session cookie lets the request through,
    else the answer (401 no or a wrong credential, 403 a cookie POST without PAGE_HEADER)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None or not token_matches(cookie, api_token):
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


PUBLIC_ROUTE_KEY = web.AppKey("public_paths", set[str])


def _is_public(request: web.Request) -> bool:
    """Routes authenticated another way (Twilio's signed callbacks) are listed as public."""
    return request.path in request.app[PUBLIC_ROUTE_KEY]


def mark_public(app: web.Application, path: str) -> None:
    """Exempt `path` from the bearer token (it must check its own signature)."""
    app[PUBLIC_ROUTE_KEY].add(path)


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
) -> web.Application:
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[store_unavailable, bearer_auth(api_token)],
    )
    app[PUBLIC_ROUTE_KEY] = set()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", make_readyz(probe))
    if metrics_page is not None:
        app.router.add_get("/metrics", make_metrics(metrics_page))
    return app
