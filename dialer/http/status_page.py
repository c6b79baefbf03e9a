"""The live status page for supervisors, served by the daemon itself.

- `GET /`: the page when the session cookie carries the API token, else the login form.
- `POST /login` (form field `token`): right -> 303 to `/` with the cookie (`api.SESSION_COOKIE`:
  HttpOnly, SameSite=Strict, Path=/); wrong -> the form again, with a message, 401.
- `POST /logout`: 303 to `/` with the cookie cleared.
- `GET /static/<name>`: the page's CSS and JavaScript, package files in `dialer/http/static/`.

The page is static HTML; its JavaScript reads the JSON API the cookie opens (`dialer.http.server`):
`GET /v1/campaigns`, `/v1/sms/funnel`, `/v1/sms/dead`, `/readyz`, and posts
`/v1/campaigns/{name}/pause|resume` with the `X-Outreach-Page` header. Nothing is loaded from
the internet, and the Content-Security-Policy allows only this origin.
"""

from __future__ import annotations

import html
import importlib.resources
import string
from dataclasses import dataclass

from aiohttp import web

from dialer.http.server import SESSION_COOKIE, token_matches
from dialer.logs import get_logger

__all__ = ["ASSETS", "StatusPage"]

log = get_logger(__name__)

ASSETS = {"status.css": "text/css", "status.js": "text/javascript"}
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
TOKEN_CHANGED = "The API token has changed since you logged in. Log in again."


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
    """The page's routes (`add_routes`), from the API token and the page's files."""

    def __init__(self, api_token: str, pages: Pages | None = None) -> None:
        self._api_token = api_token
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
        if cookie is not None and token_matches(cookie, self._api_token):
            return self._html(self.pages.status)
        return self._login_form(TOKEN_CHANGED if cookie else "", status=200)

    async def login(self, request: web.Request) -> web.Response:
        form = await request.post()
        given = form.get("token")
        given = given.strip() if isinstance(given, str) else ""
        if not token_matches(given, self._api_token):
            log.warning("status_page.login_refused", remote=request.remote)
            return self._login_form(WRONG_TOKEN, status=401)
        log.info("status_page.logged_in", remote=request.remote)
        response = web.Response(status=303, headers={"Location": "/", **PAGE_HEADERS})
        response.set_cookie(
            SESSION_COOKIE,
            self._api_token,
            httponly=True,
            samesite="Strict",
            path="/",
            secure=request.secure,
        )
        return response

    async def logout(self, _: web.Request) -> web.Response:
        response = web.Response(status=303, headers={"Location": "/", **PAGE_HEADERS})
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

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
