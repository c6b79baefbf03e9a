"""A 100,000-row `dialer contacts import` while the daemon dials (the lab PBX) and sends SMS, on
SQLite and PostgreSQL: the import finishes, the daemon never stops, every call it places and
every message it accepts meanwhile goes through."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.test_store_outage import NOTIFICATIONS, order_event, outbox, poll_until
from tests.support import ALL_WEEK, REPO, DaemonProcess, free_port, write_daemon_config

pytestmark = [pytest.mark.pbx, pytest.mark.usefixtures("lab_pbx_running")]

ROWS = 100_000
CAMPAIGNS = f"""
campaigns:
  refusal:
    kind: refusal_callback
    channel: Local/{{number}}@customers
    max_concurrent_calls: 4
    max_calls_per_second: 5
    calling_windows: {ALL_WEEK}
  bulk:
    kind: refusal_callback
    enabled: false
    channel: Local/{{number}}@customers
    calling_windows: {ALL_WEEK}
"""


def write_csv(path: Path) -> None:
    with path.open("w") as out:
        out.write("phone,name\n")
        out.writelines(f"+86139{i:08d},c{i}\n" for i in range(ROWS))


async def contacts_of(http: aiohttp.ClientSession, api: str, name: str) -> dict[str, Any]:
    async with http.get(f"{api}/v1/campaigns/{name}") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
    return body["contacts"]


@pytest.mark.timeout(240)
async def test_a_large_import_while_the_daemon_dials_and_sends_stops_nothing(
    store_url: str, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    config = write_daemon_config(tmp_path, api_port=api_port, store_url=store_url)
    config.write_text(config.read_text() + CAMPAIGNS + NOTIFICATIONS)
    csv_file = tmp_path / "bulk.csv"
    write_csv(csv_file)
    phones = [f"+86138{i:04d}1001" for i in range(20)]  # lab customers: answer, talk 2 s
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("daemon.ready", timeout_s=30)
        reading = asyncio.create_task(daemon.read_logs())
        importing = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dialer", "contacts", "import", "bulk", str(csv_file),
            "--config", str(config), cwd=REPO,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        url = f"{api}/v1/campaigns/refusal/contacts"
        async with http.post(url, json=[{"phone": phone} for phone in phones]) as response:
            assert response.status == 200
        statuses = []
        for number in range(50):  # the order system posts while the import runs
            async with http.post(f"{api}/v1/events", json=order_event(number)) as response:
                statuses.append(response.status)
        out, err = await asyncio.wait_for(importing.communicate(), 180)

        async def all_done() -> bool:
            done = (await contacts_of(http, api, "refusal")).get("done", 0) == len(phones)
            return done and len(outbox(tmp_path)) == 50

        await poll_until(all_done, timeout_s=120)
        bulk = await contacts_of(http, api, "bulk")
        alive = daemon.process.returncode is None
        reading.cancel()
        assert await daemon.stop() == 0
    finally:
        daemon.kill()
    assert importing.returncode == 0, err.decode()
    assert out.decode().strip() == f"bulk: {ROWS} added, 0 merged, 0 already finished, 0 refused"
    assert bulk == {"pending": ROWS}
    assert alive
    assert statuses == [202] * 50
    assert "component.failed" not in [line["event"] for line in daemon.log_lines]
