"""Slow and greedy clients against the daemon's listener (`LimitedSite` and `runner_options`,
as `Daemon.run` uses them): silent and half-sent requests are closed, a body that does not
arrive gets 408, an announced body over the limit gets 413 at once, and connections past the
cap get 503. The time-outs are a fraction of a second; each test waits for the server to act,
never for a fixed time."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from dialer.http.bodies import read_json
from dialer.http.connections import LimitedSite, runner_options
from dialer.http.server import Check, make_web_app
from tests.support import free_port, raw_request

IDLE_TIMEOUT_S = 0.3
BODY_TIMEOUT_S = 0.3
MAX_CONNECTIONS = 2
MAX_BODY_BYTES = 2048
WAIT_S = 5.0  # how long a test waits for the server to act, at most


async def no_checks() -> list[Check]:
    return []


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"read": await read_json(request)})


@dataclass
class Listener:
    port: int
    site: LimitedSite


@pytest.fixture
async def listener() -> AsyncIterator[Listener]:
    app = make_web_app(
        no_checks, max_body_bytes=MAX_BODY_BYTES, api_token="t", body_timeout_s=BODY_TIMEOUT_S
    )
    app.router.add_post("/echo", echo)
    runner = web.AppRunner(
        app, handle_signals=False, **runner_options(idle_timeout_s=IDLE_TIMEOUT_S)
    )
    await runner.setup()
    port = free_port()
    site = LimitedSite(runner, "127.0.0.1", port, max_connections=MAX_CONNECTIONS)
    await site.start()
    try:
        yield Listener(port, site)
    finally:
        await runner.cleanup()


async def answer_to(port: int, request: bytes) -> bytes:
    """What the server sends on a connection that sends `request` and waits, until it closes."""
    return await raw_request(port, request, timeout_s=WAIT_S)


async def first_answer(port: int, request: bytes) -> tuple[bytes, dict[str, object]]:
    """The status line and JSON body of the first answer, without waiting for the close."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        async with asyncio.timeout(WAIT_S):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
    finally:
        writer.close()
    return head.split(b"\r\n")[0], json.loads(body)


async def test_a_connection_that_sends_nothing_is_closed(listener: Listener) -> None:
    assert await answer_to(listener.port, b"") == b""


async def test_a_request_whose_headers_never_end_is_closed(listener: Listener) -> None:
    half = b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: "
    assert await answer_to(listener.port, half) == b""


async def test_a_kept_alive_connection_is_closed_once_idle(listener: Listener) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    answer = await answer_to(listener.port, request)
    assert answer.startswith(b"HTTP/1.1 200 ")  # answered, then closed for idling


async def test_a_body_that_does_not_arrive_gets_408(
    listener: Listener, log_output: io.StringIO
) -> None:
    request = b'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"a": '
    answer = await answer_to(listener.port, request)
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"did not arrive within 0.3 s" in answer
    events = [json.loads(line)["event"] for line in log_output.getvalue().splitlines()]
    assert events == ["http.body_timed_out"]


async def test_an_announced_body_over_the_limit_gets_413_before_it_is_sent(
    listener: Listener,
) -> None:
    request = b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000000\r\n\r\n"
    status, body = await first_answer(listener.port, request)  # not one byte of the body sent
    assert status == b"HTTP/1.1 413 Request Entity Too Large"
    assert body["field"] == "Content-Length"


async def test_connections_past_the_cap_get_503_and_a_freed_place_is_taken_again(
    listener: Listener, log_output: io.StringIO
) -> None:
    held = [await asyncio.open_connection("127.0.0.1", listener.port) for _ in range(2)]
    refused = [await answer_to(listener.port, b"") for _ in range(2)]
    for _, writer in held:
        writer.close()
    async with asyncio.timeout(WAIT_S):
        while listener.site.open_connections:  # noqa: ASYNC110 (the server's own count)
            await asyncio.sleep(0)
    admitted = await answer_to(
        listener.port, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in refused)
    assert admitted.startswith(b"HTTP/1.1 200 ")
    events = [json.loads(line) for line in log_output.getvalue().splitlines()]
    assert [(e["event"], e.get("refused")) for e in events] == [
        ("http.connections_capped", None),
        ("http.connections_admitted", 2),
    ]
