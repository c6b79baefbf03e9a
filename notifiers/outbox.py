"""A local outbox: each message becomes one JSON line in a file (the embedded default, the demo).

It stands for the phone network, so it writes the whole message, number and text, unmasked:
`{"message_id", "to", "body", "segments", "encoding", "sent_at"}`, UTF-8, one object per line.
The directory is created when missing. Provider message ids are `outbox-<n>`, where n counts
the lines of the file (so they stay unique across restarts).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from notifiers.base import OutboundSms, SendResult, segments
from notifiers.errors import PermanentError

__all__ = ["OutboxNotifier"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OutboxNotifier:
    """Appends messages to a JSONL file; one writer at a time (an asyncio lock), the file I/O in
    a worker thread so the loop never blocks on the disk."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str = "outbox",
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.name = name
        self.path = Path(path)
        self._now = now
        self._lock = asyncio.Lock()
        self._file_lock = threading.Lock()
        self._lines: int | None = None  # counted on first use

    async def send(self, message: OutboundSms) -> SendResult:
        encoding, parts = segments(message.body)
        async with self._lock:
            record = {
                "message_id": message.message_id,
                "to": message.to,
                "body": message.body,
                "segments": parts,
                "encoding": encoding,
                "sent_at": self._now().isoformat(),
            }
            line = json.dumps(record, ensure_ascii=False) + "\n"
            try:
                number = await asyncio.to_thread(self._append, line)
            except OSError as exc:
                raise PermanentError(
                    f"cannot write the outbox {self.path}: {exc}",
                    code=type(exc).__name__,
                    provider=self.name,
                ) from exc
        return SendResult(provider=self.name, provider_message_id=f"outbox-{number}", status="sent")

    async def close(self) -> None:
        """Nothing stays open between messages."""

    def _append(self, line: str) -> int:
        """Append one line; return how many lines the file now holds. Runs in a worker thread,
        under a thread lock too: a cancelled send's write still finishes, and is counted."""
        with self._file_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self._lines is None:
                self._lines = _count_lines(self.path)
            with self.path.open("a", encoding="utf-8") as file:
                file.write(line)
            self._lines += 1
            return self._lines


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as file:
            return sum(1 for _ in file)
    except FileNotFoundError:
        return 0
