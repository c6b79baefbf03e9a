"""Helpers shared by the tests: waiting for AMI events without sleeping, the lab PBX."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from dialer.pbx.client import AmiClient
from dialer.pbx.wire import AmiEvent, AmiOptions

REPO = Path(__file__).resolve().parent.parent
LAB_PBX = REPO / "lab" / "pbx"
LAB_AMI_PORT = 15038
LAB_AMI_USERNAME = "outreach"


def lab_pbx(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `lab/pbx ARGS...` and return what it printed."""
    return subprocess.run(
        [str(LAB_PBX), *args], capture_output=True, text=True, check=check, timeout=120
    )


def lab_ami_options(**overrides: float | str | int) -> AmiOptions:
    secret = (REPO / "lab" / "ami-secret").read_text().strip()
    values: dict[str, float | str | int] = {
        "host": "127.0.0.1",
        "port": LAB_AMI_PORT,
        "username": LAB_AMI_USERNAME,
        "secret": secret,
        "ping_interval_s": 2.0,
        "ping_timeout_s": 1.0,
        "reconnect_initial_backoff_s": 0.2,
        "reconnect_max_backoff_s": 1.0,
    }
    values.update(overrides)
    return AmiOptions(**values)  # type: ignore[arg-type]


class EventRecorder:
    """Keeps every AMI event; `wait_for` returns the first one matching, as soon as it arrives."""

    def __init__(self) -> None:
        self.events: list[AmiEvent] = []
        self._arrived = asyncio.Condition()

    async def __call__(self, event: AmiEvent) -> None:
        async with self._arrived:
            self.events.append(event)
            self._arrived.notify_all()

    async def wait_for(
        self, matches: Callable[[AmiEvent], bool], timeout_s: float = 15.0
    ) -> AmiEvent:
        async with asyncio.timeout(timeout_s), self._arrived:
            while True:
                for event in self.events:
                    if matches(event):
                        return event
                await self._arrived.wait()

    def of_call(self, channel_id: str) -> list[AmiEvent]:
        """Events of one call: every leg carries the Originate ChannelId as its Linkedid."""
        return [
            e
            for e in self.events
            if channel_id in (e.get("Linkedid"), e.get("Uniqueid"), e.get("DestUniqueid"))
        ]


@contextlib.asynccontextmanager
async def running(client: AmiClient) -> AsyncIterator[AmiClient]:
    """Run the client's supervisor for the duration of the block, then stop it."""
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class RecordingSleep:
    """Stands in for asyncio.sleep in a reconnect loop: records each delay, waits until released."""

    def __init__(self) -> None:
        self.delays_s: list[float] = []
        self._recorded = asyncio.Condition()
        self.release = asyncio.Event()

    async def __call__(self, delay_s: float) -> None:
        async with self._recorded:
            self.delays_s.append(delay_s)
            self._recorded.notify_all()
        await self.release.wait()
        self.release.clear()

    async def wait_for_count(self, count: int, timeout_s: float = 10.0) -> list[float]:
        async with asyncio.timeout(timeout_s), self._recorded:
            await self._recorded.wait_for(lambda: len(self.delays_s) >= count)
        return self.delays_s


ALL_WEEK = (
    "{"
    + ", ".join(f"{d}: [00:00-23:59]" for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    + "}"
)
"""A calling window open all day, every day (YAML flow mapping), for campaigns in tests."""
DAEMON_TOKEN = "test-token"
"""The API token `write_daemon_config` writes."""


def dialer(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m dialer ARGS` from the repository, its output captured (never raises)."""
    return subprocess.run(
        [sys.executable, "-m", "dialer", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (also used as a closed port)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_daemon_config(
    directory: Path,
    *,
    ami_port: int = LAB_AMI_PORT,
    ami_secret: str | None = None,
    api_port: int,
    store_url: str = "sqlite:///var/outreach.db",
) -> Path:
    """A small config for running the daemon in tests, with its secrets in files beside it."""
    secret_file = directory / "ami-secret"
    secret_file.write_text((ami_secret or (REPO / "lab" / "ami-secret").read_text().strip()) + "\n")
    (directory / "api-token").write_text(DAEMON_TOKEN + "\n")
    config = directory / "config.yaml"
    config.write_text(
        f"""\
ami:
  host: 127.0.0.1
  port: {ami_port}
  username: {LAB_AMI_USERNAME}
  secret_file: ami-secret
  ping_interval_s: 2
  ping_timeout_s: 1
  reconnect_initial_backoff_s: 0.2
  reconnect_max_backoff_s: 1
store:
  url: {store_url}
api:
  host: 127.0.0.1
  port: {api_port}
  token_file: api-token
  shutdown_grace_s: 5
logging:
  level: INFO
  format: json
"""
    )
    return config


class DaemonProcess:
    """`python -m dialer run` as a child process; its JSON log lines are read as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log_lines: list[dict[str, object]] = []

    @classmethod
    async def start(cls, config: Path, *arguments: str) -> DaemonProcess:
        """`dialer run --config CONFIG ARGUMENTS` (`--role dispatcher`, say)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "dialer",
            "run",
            "--config",
            str(config),
            *arguments,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        return cls(process)

    async def wait_for_log(self, event: str, timeout_s: float = 15.0) -> dict[str, object]:
        """Read log lines until one has `event`; fail when the process ends first."""
        for line in self.log_lines:
            if line.get("event") == event:
                return line
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout_s):
            while raw := await self.process.stdout.readline():
                line = json.loads(raw)
                self.log_lines.append(line)
                if line.get("event") == event:
                    return line
        raise AssertionError(f"the daemon exited before logging {event}: {self.log_lines}")

    async def stop(self, signum: int = signal.SIGTERM, timeout_s: float = 10.0) -> int:
        """Send `signum` and return the exit status; fail when it takes longer than timeout_s."""
        self.process.send_signal(signum)
        async with asyncio.timeout(timeout_s):
            out, _ = await self.process.communicate()
        self.log_lines.extend(json.loads(raw) for raw in out.splitlines() if raw.strip())
        assert self.process.returncode is not None
        return self.process.returncode

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()

    async def read_logs(self) -> None:
        """Keep reading the log lines (run as a task while the test waits on something else, so
        the pipe never fills and stalls the daemon)."""
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            self.log_lines.append(json.loads(raw))


async def raw_request(
    port: int, request: bytes, *, timeout_s: float = 10.0, close_after_send: bool = False
) -> bytes:
    """Send `request` as it is (headers aiohttp's client would refuse to send), return all the
    server answers until it closes or the time-out (or nothing, `close_after_send`: a client
    that goes away mid-request): for hostile-client tests."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        if close_after_send:
            return b""
        async with asyncio.timeout(timeout_s):
            return await reader.read()
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Let the event loop run (no time passes on purpose) until `condition` holds."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (an in-process condition: no event to wait on)
            await asyncio.sleep(0)
