"""What supervisors see of a campaign: its state and counts, and its calls in flight."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from dialer.calling.calls import Call
from dialer.calling.ports import CampaignReports
from dialer.calling.runner import CampaignRunner
from dialer.logs import mask_phone

__all__ = ["call_stage", "campaign_status", "live_calls"]


def call_stage(call: Call) -> str:
    """Where a call in flight stands: ringing, answered, or with an agent."""
    if call.with_agent:
        return "with_agent"
    if call.answered.is_set():
        return "answered"
    return "ringing"


def live_calls(calls: Iterable[Call], now: datetime) -> list[dict[str, Any]]:
    """Calls in flight, oldest first: masked number, stage and age."""
    return [
        {
            "attempt_id": call.attempt_id,
            "phone": mask_phone(call.phone),
            "stage": call_stage(call),
            "started_at": call.started_at.isoformat(),
            "age_s": round(max(0.0, (now - call.started_at).total_seconds()), 1),
        }
        for call in sorted(calls, key=lambda call: call.started_at)
    ]


async def campaign_status(
    runner: CampaignRunner, reports: CampaignReports, calls: Iterable[Call], now: datetime
) -> dict[str, Any]:
    """State (running, paused, disabled), contacts by state, attempts by outcome and by
    disposition, calls in flight, the caps, next due time, free agents, the latest attempts."""
    summary = await reports.summary(runner.campaign_id)
    next_due = summary.pop("next_due_at")
    summary["state"] = "paused" if runner.paused else summary["state"]
    if not runner.campaign.enabled:
        summary["state"] = "disabled"
    summary.update(
        name=runner.name,
        kind=runner.campaign.kind,
        calls_in_flight=len(runner.calls),
        max_concurrent_calls=runner.pacer.max_concurrent,
        max_calls_per_second=runner.campaign.max_calls_per_second,
        next_due_at=_iso(next_due),
    )
    if runner.agent_queue is not None:
        summary["free_agents"] = runner.agent_queue.free_agents
    if runner.outbound is not None:
        summary["pacing"] = runner.outbound.measures()
    summary["pbx_refusing"] = runner.refusals.as_dict()
    summary["live_calls"] = live_calls(calls, now)
    summary["recent_attempts"] = [
        {
            **row,
            "phone": mask_phone(row["phone"]),
            "started_at": row["started_at"].isoformat(),
            "next_attempt_at": _iso(row["next_attempt_at"]),
        }
        for row in await reports.recent_attempts(runner.campaign_id)
    ]
    return summary


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
