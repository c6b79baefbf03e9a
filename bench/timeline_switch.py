"""`--no-timeline` for the benchmarks: the store's modules write no timeline entry (their
`add_entries` and the outbox's `record_outcomes_on_timeline` replaced by no-ops), so a run with
and a run without show what recording costs. For measuring only: the daemon has no such switch
(the timeline is its audit trail)."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

RECORDING_MODULES = (
    "dialer.store.events",
    "dialer.store.outbox",
    "dialer.store.message_timeline",
    "dialer.store.attempts",
    "dialer.store.campaigns",
    "dialer.store.opt_outs",
    "dialer.store.timeline",
)


async def _record_nothing(_conn: Any, _entries: Sequence[Any]) -> None:
    return None


def disable_timeline() -> None:
    for name in RECORDING_MODULES:
        module = importlib.import_module(name)
        module.add_entries = _record_nothing  # type: ignore[attr-defined]
    outbox = importlib.import_module("dialer.store.outbox")
    outbox.record_outcomes_on_timeline = _record_nothing  # type: ignore[attr-defined]
