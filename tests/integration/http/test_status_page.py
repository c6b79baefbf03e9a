"""The status page over real HTTP: the login form, the session cookie and what it opens on
/v1 (GETs; POSTs only with the page's header), logout, the assets, and that nothing the page
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

from dialer.http.server import PAGE_HEADER, SESSION_COOKIE, Check, make_web_app
from dialer.http.status_page import ASSETS, StatusPage

REPO = Path(__file__).resolve().parents[3]
STATIC = REPO / "dialer" / "http" / "static"
TOKEN = "page-test-token"
Client = TestClient[web.Request, web.Application]


async def all_ready() -> list[Check]:
    return [Check("ami", True, "logged in")]


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"method": request.method, "path": request.path})


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    """The daemon's web app with the status page and a /v1 route that says it was reached."""
    app = make_web_app(all_ready, max_body_bytes=4096, api_token=TOKEN)
    StatusPage(TOKEN).add_routes(app)
    app.router.add_get("/v1/echo", echo)
    app.router.add_post("/v1/echo", echo)
    async with TestClient(TestServer(app)) as test_client:
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
    assert cookie.value == TOKEN
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"


async def test_with_the_cookie_the_root_is_the_status_page(client: Client) -> None:
    await log_in(client)
    response = await client.get("/")
    text = await response.text()
    assert response.status == 200
    assert 'id="campaign-template"' in text
    assert '<script src="/static/status.js"' in text
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_a_cookie_of_another_token_gets_the_form_saying_the_token_changed(
    client: Client,
) -> None:
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: "an-old-token"})
    response = await client.get("/")
    assert "The API token has changed" in await response.text()


async def test_the_log_names_logins_and_never_holds_the_token(
    client: Client, log_output: io.StringIO
) -> None:
    await log_in(client, "wrong-guess")
    await log_in(client)
    lines = [json.loads(line) for line in log_output.getvalue().splitlines()]
    events = [line["event"] for line in lines]
    assert events == ["status_page.login_refused", "status_page.logged_in"]
    assert TOKEN not in log_output.getvalue()
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
    client.session.cookie_jar.update_cookies({SESSION_COOKIE: TOKEN + "x"})
    response = await client.post("/v1/echo", headers={PAGE_HEADER: "1"})
    assert response.status == 401


async def test_the_bearer_token_alone_still_posts_without_the_page_header(client: Client) -> None:
    response = await client.post("/v1/echo", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200


# -- the assets ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("status.css", "text/css"), ("status.js", "text/javascript")],
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


def test_the_script_never_puts_text_into_html() -> None:
    script = (STATIC / "status.js").read_text(encoding="utf-8")
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
    assert {f"dialer/static/{path.name}" for path in shipped_files()} <= names
