"""A PBX that refuses the login because it is stopping is retried soon, as a lost link; a login
refused for the credentials waits `login_failure_backoff_s`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dialer.pbx.client import AmiClient
from tests.support import RecordingSleep, lab_ami_options, running


@asynccontextmanager
async def ami_refusing_logins(message: str) -> AsyncIterator[int]:
    """An AMI that answers every Login with `Response: Error` and `message`; its port."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        block: dict[str, str] = {}
        while line := (await reader.readline()).decode():
            if line.strip():
                key, _, value = line.partition(":")
                block[key.strip()] = value.strip()
                continue
            if block.get("Action") == "Login":
                answer = f"Response: Error\r\nActionID: {block.get('ActionID', '')}\r\n"
                writer.write(f"{answer}Message: {message}\r\n\r\n".encode())
                await writer.drain()
            block = {}
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def _first_wait_after_a_refused_login(message: str) -> tuple[float, str]:
    sleep = RecordingSleep()
    async with ami_refusing_logins(message) as port:
        client = AmiClient(
            lab_ami_options(
                port=port, reconnect_initial_backoff_s=1.0, login_failure_backoff_s=60.0
            ),
            sleep=sleep,
        )
        async with running(client):
            await sleep.wait_for_count(1)
            detail = client.link.detail
            sleep.release.set()
    return sleep.delays_s[0], detail


async def test_a_login_refused_while_asterisk_shuts_down_is_retried_like_a_lost_link() -> None:
    delay_s, detail = await _first_wait_after_a_refused_login("Asterisk is shutting down")
    assert 0.8 <= delay_s <= 1.2
    assert "Asterisk is shutting down" in detail
    assert "login refused" not in detail


async def test_a_login_refused_for_its_credentials_waits_the_login_backoff() -> None:
    delay_s, detail = await _first_wait_after_a_refused_login("Authentication failed")
    assert 48.0 <= delay_s <= 72.0  # jittered
    assert "login refused as 'outreach': Authentication failed" in detail
