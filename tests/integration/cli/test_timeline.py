"""`dialer timeline PHONE --config FILE` as an ops engineer runs it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer.store import Store
from dialer.store.timeline import TimelineStore
from dialer.timeline import NewEntry
from tests.support import dialer, free_port, write_daemon_config

PHONE = "+8613812345678"
AT = datetime(2026, 12, 6, 6, 5, tzinfo=UTC)


def config_with_history(tmp_path: Path) -> str:
    path = write_daemon_config(tmp_path, api_port=free_port())
    entries = [
        NewEntry(PHONE, AT, "event_received", "refused", order_id="A1001"),
        NewEntry(
            PHONE,
            AT + timedelta(seconds=1),
            "held_back",
            "outside_calling_window",
            until=AT + timedelta(hours=2),
            campaign="refusal-callback",
            order_id="A1001",
        ),
        NewEntry(PHONE, AT + timedelta(seconds=2), "sms_reply", f"call me at {PHONE}"),
        NewEntry("+8613900000000", AT, "event_received", "shipped", order_id="B1"),
    ]

    async def record() -> None:
        store = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'var' / 'outreach.db'}")
        try:
            await TimelineStore(store).record(entries)
        finally:
            await store.close()

    asyncio.run(record())
    return str(path)


def test_the_timeline_of_a_number_in_any_format_is_printed_masked(tmp_path: Path) -> None:
    done = dialer("timeline", "138 1234 5678", "--config", config_with_history(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "timeline of +86138****5678 (times in UTC)"
    assert "event_received" in lines[2]
    assert "held_back" in lines[3]
    assert "outside_calling_window until 2026-12-06 08:05" in lines[3]
    assert "call me at +86138****5678" in lines[4]
    assert PHONE not in done.stdout
    assert "shipped" not in done.stdout  # another number's


def test_show_numbers_prints_them_whole(tmp_path: Path) -> None:
    path = config_with_history(tmp_path)
    done = dialer("timeline", PHONE, "--config", path, "--show-numbers", "--format", "json")
    document = json.loads(done.stdout)
    assert document["phone"] == PHONE
    assert [entry["kind"] for entry in document["entries"]] == [
        "event_received",
        "held_back",
        "sms_reply",
    ]
    assert document["entries"][2]["reason"] == f"call me at {PHONE}"


def test_a_number_that_does_not_parse_exits_2_naming_it(tmp_path: Path) -> None:
    done = dialer("timeline", "12ab", "--config", config_with_history(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("dialer: PHONE: ")
