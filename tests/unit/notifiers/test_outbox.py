"""The local outbox: one JSON line per message, whole and unmasked (it stands for the network)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from notifiers import OutboundSms, OutboxNotifier, PermanentError

SENT_AT = datetime(2026, 11, 26, 8, 30, 0, tzinfo=UTC)


def fixed_now() -> datetime:
    return SENT_AT


def read_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


async def test_a_message_becomes_one_json_line_with_its_segments(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = OutboxNotifier(path, now=fixed_now)
    body = "【优品购】您的订单已发货，回复TD退订"
    result = await outbox.send(OutboundSms("msg-42", "+8613812345678", body))
    assert result.provider == "outbox"
    assert result.provider_message_id == "outbox-1"
    assert result.status == "sent"
    assert read_lines(path) == [
        {
            "message_id": "msg-42",
            "to": "+8613812345678",
            "body": body,
            "segments": 1,
            "encoding": "UCS-2",
            "sent_at": "2026-11-26T08:30:00+00:00",
        }
    ]


async def test_text_is_written_as_utf8_not_escaped_and_the_number_is_whole(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.jsonl"
    await OutboxNotifier(path).send(OutboundSms("m", "+8613812345678", "已签收"))
    raw = path.read_text(encoding="utf-8")
    assert "已签收" in raw
    assert "\\u" not in raw
    assert "+8613812345678" in raw


async def test_the_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "deep" / "outbox.jsonl"
    await OutboxNotifier(path).send(OutboundSms("m", "+15558675310", "hello"))
    assert read_lines(path)[0]["encoding"] == "GSM-7"


async def test_ids_count_the_lines_also_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    first = OutboxNotifier(path)
    ids = [
        (await first.send(OutboundSms(f"m{n}", "+15558675310", "x"))).provider_message_id
        for n in range(2)
    ]
    restarted = OutboxNotifier(path)
    ids.append((await restarted.send(OutboundSms("m2", "+15558675310", "x"))).provider_message_id)
    assert ids == ["outbox-1", "outbox-2", "outbox-3"]
    assert [line["message_id"] for line in read_lines(path)] == ["m0", "m1", "m2"]


async def test_concurrent_sends_write_whole_lines_with_unique_ids(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    outbox = OutboxNotifier(path)
    messages = [OutboundSms(f"msg-{n}", "+8613812345678", "订单" * 50) for n in range(50)]
    results = await asyncio.gather(*(outbox.send(message) for message in messages))
    assert len({result.provider_message_id for result in results}) == 50
    lines = read_lines(path)
    assert sorted(str(line["message_id"]) for line in lines) == sorted(
        message.message_id for message in messages
    )
    assert {line["segments"] for line in lines} == {2}  # 100 UCS-2 units


async def test_close_is_harmless_and_sending_goes_on(tmp_path: Path) -> None:
    outbox = OutboxNotifier(tmp_path / "o.jsonl", name="demo")
    await outbox.close()
    result = await outbox.send(OutboundSms("m", "+15558675310", "x"))
    assert result.provider == "demo"


async def test_an_unwritable_outbox_is_a_permanent_provider_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.jsonl"
    path.mkdir()  # a directory where the file should be
    with pytest.raises(PermanentError) as raised:
        await OutboxNotifier(path).send(OutboundSms("m", "+15558675310", "x"))
    assert raised.value.reason == "provider"
    assert raised.value.provider == "outbox"
