"""The status page over real HTTP: the login form, the session cookie and what it opens on
/v1 (GETs; POSTs only with the page's header), sessions that end (logout, expiry, a new API
token), the Secure flag behind TLS, login throttling, the assets, and that nothing the page
ships points at the internet or puts API text into HTML."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dialer.http.login_throttle import LoginThrottle
from dialer.http.server import PAGE_HEADER, SESSION_COOKIE, Check, make_web_app
from dialer.http.sessions import Sessions
from dialer.http.status_page import ASSETS, StatusPage
from tests.fakes.sessions import MemorySessions
from tests.integration.sms_support import Now

REPO = Path(__file__).resolve().parents[3]
STATIC = REPO / "dialer" / "http" / "static"
TOKEN = "page-test-token"
TTL_S = 3600
Client = TestClient[web.Request, web.Application]


async def all_ready() -> list[Check]:
    return [Check("ami", True, "logged in")]


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"method": request.method, "path": request.path})


def page_app(
    repository: MemorySessions, now: Now, token: str = TOKEN, public_url: str | None = None
) -> web.Application:
    """The daemon's web app with the status page and a /v1 route that says it was reached."""
    sessions = Sessions(repository, token, ttl_s=TTL_S, now=now)
    app = make_web_app(all_ready, max_body_bytes=4096, api_token=token, sessions=sessions)
    StatusPage(sessions, LoginThrottle(now), public_url=public_url).add_routes(app)
    app.router.add_get("/v1/echo", echo)
    app.router.add_post("/v1/echo", echo)
    return app


@pytest.fixture
def repository() -> MemorySessions:
    return MemorySessions()


@pytest.fixture
def now() -> Now:
    return Now()


@pytest.fixture
async def client(repository: MemorySessions, now: Now) -> AsyncIterator[Client]:
    async with TestClient(TestServer(page_app(repository, now))) as test_client:
        yield test_client


async def log_in(client: Client, token: str = TOKEN) -> web.StreamResponse:
    return await client.post("/login", data={"token": token}, allow_redirects=False)


def set_cookie(response: web.StreamResponse) -> SimpleCookie:
    cookie: SimpleCookie = SimpleCookie()
    for header in response.headers.getall("Set-Cookie", []):
        cookie.load(header)
    return cookie


# -- the login form and the cookie ---------------------------------------------------------------


async def test_the_root_without_a_cookie_is_the_login_form(client: Client) -> None:
    response = await client.get("/")
    text = await response.text()
    assert response.status == 200
    assert '<form method="post" action="/login">' in text
    assert 'name="token"' in text
    assert "campaign-template" not in text


async def test_a_wrong_token_gives_the_form_again_with_a_message_and_401(client: Client) -> None:
    response = await log_in(client, "not-the-token")
    text = await response.text()
    assert response.status == 401
    assert "That is not the API token" in text
    assert 'action="/login"' in text
    assert SESSION_COOKIE not in set_cookie(response)


async def test_the_right_token_redirects_home_with_a_strict_http_only_cookie(
    client: Client,
) -> None:
    response = await log_in(client)
    cookie = set_cookie(response)[SESSION_COOKIE]
    assert response.status == 303
    assert response.headers["Location"] == "/"
    assert cookie.value != TOKEN  # a session id, not the token
    assert len(cookie.value) >= 43
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    assert cookie["max-age"] == str(TTL_S)
    assert cookie["secure"] == ""  # plain HTTP, no proxy saying otherwise


async def test_with_the_cookie_the_root_is_the_status_page(client: Client) -> None:
    await log_in(client)
    response = await client.get("/")
    text = await response.text()
    assert response.status == 200
    assert 'id="campaign-template"' in text
    assert '<script src="/static/status.js"' in text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_session_opened_with_another_token_gets_the_form_saying_the_token_changed(
    client: Client, repository: MemorySessions, now: Now
) -> None:
    session_id = set_cookie(await log_in(client))[SESSION_COOKIE].value
    new_token_app = page_app(repository, now, token="the-new-token")
    async with TestClient(TestServer(new_token_app)) as after_the_change:
        after_the_change.session.cookie_jar.update_cookies({SESSION_COOKIE: session_id})
        page = await after_the_change.get("/")
        v1 = await after_the_change.get("/v1/echo")
        assert "The API token has changed" in await page.text()
        assert v1.status == 401


async def test_the_cookie_is_not_the_token_and_the_token_as_a_cookie_opens_nothing(
    client: Client,
) -> None:
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: TOKEN})
    page = await client.get("/")
    v1 = await client.get("/v1/echo")
    assert 'action="/login"' in await page.text()
    assert v1.status == 401


async def test_a_session_ends_after_its_time_to_live(client: Client, now: Now) -> None:
    await log_in(client)
    assert (await client.get("/v1/echo")).status == 200
    now.advance(TTL_S)
    page = await client.get("/")
    v1 = await client.get("/v1/echo")
    assert "Your session has expired" in await page.text()
    assert v1.status == 401


async def test_the_store_keeps_a_hash_of_the_session_id_never_the_id_or_the_token(
    client: Client, repository: MemorySessions
) -> None:
    session_id = set_cookie(await log_in(client))[SESSION_COOKIE].value
    [(id_hash, (fingerprint, _))] = repository.rows.items()
    assert session_id not in id_hash
    assert TOKEN not in fingerprint
    assert len(id_hash) == 64  # SHA-256, hex


# -- Secure behind TLS ---------------------------------------------------------------------------


async def test_the_cookie_is_secure_when_a_proxy_says_the_request_came_over_https(
    client: Client,
) -> None:
    response = await client.post(
        "/login",
        data={"token": TOKEN},
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
    )
    assert set_cookie(response)[SESSION_COOKIE]["secure"] is True


async def test_the_cookie_is_secure_when_the_public_url_is_https(
    repository: MemorySessions, now: Now
) -> None:
    app = page_app(repository, now, public_url="https://outreach.example.com")
    async with TestClient(TestServer(app)) as client:
        response = await log_in(client)
    assert set_cookie(response)[SESSION_COOKIE]["secure"] is True


# -- throttling wrong tokens ---------------------------------------------------------------------


async def test_five_wrong_tokens_then_each_try_waits_longer_with_429_and_retry_after(
    client: Client, now: Now
) -> None:
    statuses = [(await log_in(client, f"guess-{i}")).status for i in range(5)]
    blocked = await log_in(client, TOKEN)  # even the right token waits: no guessing faster
    now.advance(2)
    sixth = await log_in(client, "guess-6")
    blocked_longer = await log_in(client, "guess-7")
    assert statuses == [401] * 5
    assert (blocked.status, blocked.headers["Retry-After"]) == (429, "2")
    assert "Too many wrong tokens" in await blocked.text()
    assert sixth.status == 401
    assert (blocked_longer.status, blocked_longer.headers["Retry-After"]) == (429, "4")


async def test_the_right_token_after_the_wait_logs_in_and_starts_afresh(
    client: Client, now: Now
) -> None:
    for i in range(6):
        now.advance(60)
        await log_in(client, f"guess-{i}")
    now.advance(60)
    right = await log_in(client)
    after = [(await log_in(client, f"again-{i}")).status for i in range(5)]
    assert right.status == 303
    assert after == [401] * 5  # five free tries again


async def test_the_wait_is_capped_at_fifteen_minutes(client: Client, now: Now) -> None:
    for i in range(30):
        await log_in(client, f"guess-{i}")
        now.advance(3600)
    await log_in(client, "one-more")
    blocked = await log_in(client, "and-another")
    assert blocked.headers["Retry-After"] == "900"


async def test_the_log_names_logins_and_never_holds_the_token_or_the_session(
    client: Client, log_output: io.StringIO
) -> None:
    await log_in(client, "wrong-guess")
    session_id = set_cookie(await log_in(client))[SESSION_COOKIE].value
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert events == ["status_page.login_refused", "status_page.logged_in"]
    assert TOKEN not in log_output.getvalue()
    assert session_id not in log_output.getvalue()
    assert "wrong-guess" not in log_output.getvalue()


async def test_logout_clears_the_cookie_and_shows_the_form_again(client: Client) -> None:
    await log_in(client)
    response = await client.post("/logout", allow_redirects=False)
    cleared = set_cookie(response)[SESSION_COOKIE]
    after = await client.get("/")
    v1 = await client.get("/v1/echo")
    assert response.status == 303
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert 'action="/login"' in await after.text()
    assert v1.status == 401


async def test_logout_ends_the_session_also_for_a_copy_of_the_cookie(client: Client) -> None:
    copied = set_cookie(await log_in(client))[SESSION_COOKIE].value
    await client.post("/logout", allow_redirects=False)
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: copied})
    v1 = await client.get("/v1/echo")
    page = await client.get("/")
    assert v1.status == 401
    assert "You are logged out" in await page.text()


# -- what the cookie opens on /v1 ----------------------------------------------------------------


async def test_the_cookie_authenticates_a_get_on_v1(client: Client) -> None:
    await log_in(client)
    response = await client.get("/v1/echo")
    assert response.status == 200
    assert await response.json() == {"method": "GET", "path": "/v1/echo"}


async def test_a_cookie_post_without_the_page_header_is_403_naming_it(client: Client) -> None:
    await log_in(client)
    response = await client.post("/v1/echo")
    body = await response.json()
    assert response.status == 403
    assert body["missing_header"] == PAGE_HEADER
    assert f"{PAGE_HEADER}: 1" in body["error"]


async def test_a_cookie_post_with_the_page_header_reaches_the_handler(client: Client) -> None:
    await log_in(client)
    response = await client.post("/v1/echo", headers={PAGE_HEADER: "1"})
    assert response.status == 200
    assert (await response.json())["method"] == "POST"


async def test_a_wrong_cookie_is_401_also_with_the_page_header(client: Client) -> None:
    await log_in(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[SESSION_COOKIE]
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: cookie.value[:-1] + "x"})
    response = await client.post("/v1/echo", headers={PAGE_HEADER: "1"})
    assert response.status == 401


async def test_the_bearer_token_alone_still_posts_without_the_page_header(client: Client) -> None:
    response = await client.post("/v1/echo", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200


# -- the assets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("status.css", "text/css"),
        ("i18n.js", "text/javascript"),
        ("status.js", "text/javascript"),
        ("loop.js", "text/javascript"),
    ],
)
async def test_assets_are_served_with_their_content_type(
    client: Client, name: str, content_type: str
) -> None:
    response = await client.get(f"/static/{name}")
    assert response.status == 200
    assert response.headers["Content-Type"] == f"{content_type}; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.read() == (STATIC / name).read_bytes()


async def test_an_unknown_asset_is_404(client: Client) -> None:
    response = await client.get("/static/../api.py")
    assert response.status == 404


def shipped_files() -> list[Path]:
    return sorted(path for path in STATIC.iterdir() if path.is_file())


def test_every_shipped_file_is_served_or_is_a_page() -> None:
    assert {path.name for path in shipped_files()} == {*ASSETS, "status.html", "login.html"}


@pytest.mark.parametrize("path", shipped_files(), ids=lambda path: path.name)
def test_the_page_references_nothing_outside_the_daemon(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert re.findall(r"https?:|(?:src|href)\s*=\s*[\"']//|url\(\s*[\"']?//|@import", text) == []


@pytest.mark.parametrize("name", ["status.js", "loop.js", "i18n.js"])
def test_the_script_never_puts_text_into_html(name: str) -> None:
    script = (STATIC / name).read_text(encoding="utf-8")
    sinks = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]
    assert [sink for sink in sinks if sink in script] == []
    assert "textContent" in script


def test_a_built_wheel_ships_the_page_files(tmp_path: Path) -> None:
    """What `pip install .` (the Dockerfile) installs: the package data must include them."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    [wheel] = tmp_path.glob("pbx_outreach-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"dialer/http/static/{path.name}" for path in shipped_files()} <= names
