"""`dialer run` as the ops engineer runs it: a real process, the lab PBX, real HTTP."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support import DaemonProcess, free_port, write_daemon_config


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def get_json(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


@pytest.mark.pbx
@pytest.mark.usefixtures("lab_pbx_running")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_daemon_is_ready_against_the_lab_pbx_and_exits_0_on_a_signal(
    tmp_path: Path, http: aiohttp.ClientSession, signum: int
) -> None:
    api_port = free_port()
    daemon = await DaemonProcess.start(write_daemon_config(tmp_path, api_port=api_port))
    try:
        ready = await daemon.wait_for_log("daemon.ready")
        health = await get_json(http, f"http://127.0.0.1:{api_port}/healthz")
        readiness = await get_json(http, f"http://127.0.0.1:{api_port}/readyz")
        async with http.get(f"http://127.0.0.1:{api_port}/metrics") as response:
            metrics = response.status, await response.text()
        exit_status = await daemon.stop(signum)
    finally:
        daemon.kill()
    assert "logged in to 127.0.0.1:15038" in str(ready["ami"])
    assert health == (200, {"status": "alive"})
    status, body = readiness
    assert status == 200
    assert body["ready"] is True
    assert body["checks"]["ami"]["ok"] is True
    assert body["checks"]["store"] == {"ok": True, "detail": "sqlite reachable"}
    assert metrics[0] == 200
    assert "\noutreach_ami_connected 1.0\n" in metrics[1]
    assert "\noutreach_outbox_depth 0.0\n" in metrics[1]
    assert exit_status == 0
    summary = daemon.log_lines[-1]
    assert summary["event"] == "daemon.stopped"
    assert (summary["calls_in_flight"], summary["sms_waiting"], summary["cancelled"]) == (0, 0, [])
    assert summary["why"] == "nothing left"
    assert (tmp_path / "var" / "outreach.db").exists()


async def test_daemon_waits_for_an_unreachable_pbx_and_readyz_says_why(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    config = write_daemon_config(tmp_path, ami_port=free_port(), api_port=api_port)
    daemon = await DaemonProcess.start(config)
    try:
        await daemon.wait_for_log("ami.connect_failed")
        await daemon.wait_for_log("api.listening")
        status, body = await get_json(http, f"http://127.0.0.1:{api_port}/readyz")
        health_status, _ = await get_json(http, f"http://127.0.0.1:{api_port}/healthz")
        exit_status = await daemon.stop()
    finally:
        daemon.kill()
    assert status == 503
    assert body["ready"] is False
    assert "cannot reach AMI at 127.0.0.1:" in body["checks"]["ami"]["detail"]
    assert body["checks"]["store"]["ok"] is True
    assert health_status == 200
    assert exit_status == 0


@pytest.mark.pbx
@pytest.mark.usefixtures("lab_pbx_running")
async def test_daemon_with_a_wrong_ami_secret_says_so_in_readyz(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    api_port = free_port()
    config = write_daemon_config(tmp_path, ami_secret="wrong-secret", api_port=api_port)
    daemon = await DaemonProcess.start(config)
    try:
        failure = await daemon.wait_for_log("ami.login_failed")
        await daemon.wait_for_log("api.listening")
        status, body = await get_json(http, f"http://127.0.0.1:{api_port}/readyz")
        exit_status = await daemon.stop()
    finally:
        daemon.kill()
    assert failure["level"] == "error"
    assert failure["retry_in_s"] == 60.0
    assert status == 503
    assert "login refused as 'outreach'" in body["checks"]["ami"]["detail"]
    assert exit_status == 0


async def test_daemon_with_an_unwritable_store_path_exits_2_with_one_clear_message(
    tmp_path: Path,
) -> None:
    config = write_daemon_config(
        tmp_path, api_port=free_port(), store_url="sqlite:////proc/outreach/outreach.db"
    )
    daemon = await DaemonProcess.start(config)
    try:
        out, err = await daemon.process.communicate()
    finally:
        daemon.kill()
    assert daemon.process.returncode == 2
    assert "/proc/outreach/outreach.db" in err.decode()
    assert "Traceback" not in err.decode() + out.decode()


async def test_daemon_whose_api_port_is_taken_exits_2(tmp_path: Path) -> None:
    port = free_port()
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    first = await DaemonProcess.start(
        write_daemon_config(first_dir, ami_port=free_port(), api_port=port)
    )
    try:
        await first.wait_for_log("api.listening")
        second = await DaemonProcess.start(
            write_daemon_config(second_dir, ami_port=free_port(), api_port=port)
        )
        _, err = await second.process.communicate()
        first_exit_status = await first.stop()
    finally:
        first.kill()
    assert second.process.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "Traceback" not in err.decode()
    assert first_exit_status == 0
