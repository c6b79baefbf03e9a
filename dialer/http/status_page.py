"""The live status page for supervisors, served by the daemon itself.

- `GET /`: the page when the session cookie names a valid session (`dialer.http.sessions`),
  else the login form (saying why, when the cookie's session expired or the token changed).
- `POST /login` (form field `token`): right -> a new session and 303 to `/` with its id in the
  cookie (`server.SESSION_COOKIE`: HttpOnly, SameSite=Strict, Path=/, Max-Age the session's
  time to live, and Secure when served over TLS: `api.public_url` is https, or a proxy says
  `X-Forwarded-Proto: https`); wrong -> the form again, with a message, 401. Wrong tokens are
  throttled per client (`dialer.http.login_throttle`): 429 with Retry-After while it waits.
- `POST /logout`: the session is deleted (the cookie is worth nothing after it, even a copy)
  and 303 to `/` with the cookie cleared.
- `GET /static/<name>`: the page's CSS and JavaScript, package files in `dialer/http/static/`.

The page is static HTML; its JavaScript reads the JSON API the cookie opens (`dialer.http.server`):
`GET /v1/campaigns`, `/v1/sms/funnel`, `/v1/sms/dead`, `/readyz`, `/v1/trends` (its charts of
the last 24 hours, drawn as SVG by `loop.js`), `/v1/contacts/{phone}/timeline` (its search
box), and posts `/v1/campaigns/{name}/pause|resume` with the `X-Outreach-Page` header. It
speaks English and Chinese (`i18n.js`: the browser's language, or the switch). Nothing is
loaded from the internet, and the Content-Security-Policy allows only this origin.
"""

from __future__ import annotations

import html
import importlib.resources
import string
from dataclasses import dataclass

from aiohttp import web

from dialer.http.bodies import read_form
from dialer.http.login_throttle import LoginThrottle
from dialer.http.server import SESSION_COOKIE
from dialer.http.sessions import Sessions, SessionState
from dialer.logs import get_logger

__all__ = ["ASSETS", "StatusPage"]

log = get_logger(__name__)

ASSETS = {
    "status.css": "text/css",
    "i18n.js": "text/javascript",
    "status.js": "text/javascript",
    "loop.js": "text/javascript",
}
"""The files under /static/ and their content types (all utf-8 text)."""

PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
ASSET_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

WRONG_TOKEN = "That is not the API token. Try again."
WHY_LOGGED_OUT: dict[SessionState, str] = {
    "token_changed": "The API token has changed since you logged in. Log in again.",
    "expired": "Your session has expired. Log in again.",
    "unknown": "You are logged out. Log in again.",
}
TOO_MANY_TRIES = "Too many wrong tokens from your address. Try again in {seconds} s."


def _static(name: str) -> bytes:
    return importlib.resources.files("dialer.http").joinpath("static", name).read_bytes()


@dataclass(frozen=True)
class Pages:
    """The page, the login form (a template with `$message`) and the assets, read once."""

    status: bytes
    login: string.Template
    assets: dict[str, bytes]

    @classmethod
    def load(cls) -> Pages:
        return cls(
            status=_static("status.html"),
            login=string.Template(_static("login.html").decode("utf-8")),
            assets={name: _static(name) for name in ASSETS},
        )


class StatusPage:
    """The page's routes (`add_routes`), from the sessions, the login throttle and the files."""

    def __init__(
        self,
        sessions: Sessions,
        throttle: LoginThrottle,
        *,
        public_url: str | None = None,
        pages: Pages | None = None,
    ) -> None:
        self.sessions = sessions
        self.throttle = throttle
        self.behind_tls = bool(public_url and public_url.lower().startswith("https://"))
        self.pages = pages or Pages.load()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.index)
        app.router.add_post("/login", self.login)
        app.router.add_post("/logout", self.logout)
        for name in ASSETS:
            app.router.add_get(f"/static/{name}", self.asset)

    # -- routes --------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.Response:
        cookie = request.cookies.get(SESSION_COOKIE)
        state = await self.sessions.check(cookie)
        if state == "valid":
            return self._html(self.pages.status)
        return self._login_form(WHY_LOGGED_OUT[state] if cookie else "", status=200)

    async def login(self, request: web.Request) -> web.Response:
        client = request.remote or "unknown"
        wait_s = self.throttle.retry_after_s(client)
        if wait_s > 0:
            log.warning("status_page.login_throttled", remote=client, retry_after_s=wait_s)
            response = self._login_form(TOO_MANY_TRIES.format(seconds=wait_s), status=429)
            response.headers["Retry-After"] = str(wait_s)
            return response
        given = (await read_form(request)).get("token", "").strip()
        if not self.sessions.token_matches(given):
            self.throttle.failed(client)
            log.warning("status_page.login_refused", remote=client)
            return self._login_form(WRONG_TOKEN, status=401)
        self.throttle.succeeded(client)
        session_id = await self.sessions.open()
        log.info("status_page.logged_in", remote=client)
        response = web.Response(status=303, headers={"Location": "/", **PAGE_HEADERS})
        response.set_cookie(
            SESSION_COOKIE,
            session_id,
            httponly=True,
            samesite="Strict",
            path="/",
            max_age=int(self.sessions.ttl.total_seconds()),
            secure=self._over_tls(request),
        )
        return response

    async def logout(self, request: web.Request) -> web.Response:
        await self.sessions.close(request.cookies.get(SESSION_COOKIE))
        response = web.Response(status=303, headers={"Location": "/", **PAGE_HEADERS})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    def _over_tls(self, request: web.Request) -> bool:
        forwarded = request.headers.get("X-Forwarded-Proto", "").strip().lower()
        return self.behind_tls or request.secure or forwarded == "https"

    async def asset(self, request: web.Request) -> web.Response:
        name = request.path.removeprefix("/static/")
        return web.Response(
            body=self.pages.assets[name],
            content_type=ASSETS[name],
            charset="utf-8",
            headers=ASSET_HEADERS,
        )

    # -- answers -------------------------------------------------------------------------------

    def _html(self, body: bytes, status: int = 200) -> web.Response:
        return web.Response(
            body=body,
            status=status,
            content_type="text/html",
            charset="utf-8",
            headers=PAGE_HEADERS,
        )

    def _login_form(self, message: str, *, status: int) -> web.Response:
        shown = f'<p class="login-error" role="alert">{html.escape(message)}</p>' if message else ""
        page = self.pages.login.substitute(message=shown)
        return self._html(page.encode("utf-8"), status=status)
