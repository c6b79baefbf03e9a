"""`dialer report`: one row per attempt, numbers masked unless asked."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from dialer.cli.report import render_report

ROW = {
    "attempt_id": "a1",
    "contact_id": 1,
    "name": "王小明",
    "phone": "+8613812345678",
    "started_at": datetime(2026, 11, 25, 2, 0, tzinfo=UTC),
    "outcome": "answered",
    "disposition": "price",
    "duration_s": 3.5,
}


def test_json_masks_numbers_by_default() -> None:
    (row,) = json.loads(render_report([ROW], "json"))
    assert (row["phone"], row["started_at"], row["disposition"]) == (
        "+86138****5678",
        "2026-11-25T02:00:00+00:00",
        "price",
    )


def test_csv_shows_numbers_when_asked() -> None:
    lines = render_report([ROW], "csv", show_numbers=True).splitlines()
    assert lines[0].startswith("attempt_id,contact_id,name,phone,started_at")
    assert "+8613812345678" in lines[1]
