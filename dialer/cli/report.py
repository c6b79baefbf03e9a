"""`dialer report CAMPAIGN --format csv|json`: one row per attempt, oldest first.

Columns: attempt_id, contact_id, name, phone (masked unless `show_numbers`), started_at,
answered_at, ended_at (ISO 8601, UTC), outcome (empty while in flight), disposition,
duration_s, agent_wait_s (calls into an agent queue), reason_code, dial_status, hangup_cause.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from dialer.logs import mask_phone

__all__ = ["COLUMNS", "render_report"]

COLUMNS = (
    "attempt_id",
    "contact_id",
    "name",
    "phone",
    "started_at",
    "answered_at",
    "ended_at",
    "outcome",
    "disposition",
    "duration_s",
    "agent_wait_s",
    "reason_code",
    "dial_status",
    "hangup_cause",
)


def _shown(row: dict[str, Any], show_numbers: bool) -> dict[str, Any]:
    shown = {column: row.get(column) for column in COLUMNS}
    for column, value in shown.items():
        if isinstance(value, datetime):
            shown[column] = value.isoformat()
    if not show_numbers and shown["phone"]:
        shown["phone"] = mask_phone(str(shown["phone"]))
    return shown


def render_report(
    rows: Sequence[dict[str, Any]], fmt: Literal["csv", "json"], *, show_numbers: bool = False
) -> str:
    shown = [_shown(row, show_numbers) for row in rows]
    if fmt == "json":
        return json.dumps(shown, ensure_ascii=False, indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in shown:
        writer.writerow({key: "" if value is None else value for key, value in row.items()})
    return out.getvalue()
