"""What a finished call comes to: its outcome, the retry rule's step, written once, logged.

`settle_call` classifies the call's observation (`dialer.calling.classify`), asks the
repository what the retry rule needs (`attempt_facts`), decides the contact's next step
(`dialer.calling.rules.next_step`) and writes both in one transaction (`settle`, at most once
per attempt). A disposition (IVR digit, agent's word) arrives on its own: `record_disposition`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from dialer.calling.calls import Call
from dialer.calling.classify import agent_wait_s, classify, reached_agent_late
from dialer.calling.ports import CampaignRepository, NextStep, Settlement
from dialer.calling.rules import disposition_from, next_step
from dialer.clock import Sleep
from dialer.config import Campaign
from dialer.metrics import Metrics

__all__ = ["record_disposition", "settle_call", "wait_for_end"]


async def wait_for_end(
    call: Call, *, guard_s: float, max_call_s: float, timer: Sleep, log: Any
) -> None:
    """Until the call is finished: its OriginateResponse due within `guard_s` (else the call is
    given up as unknown, `call.response_missing`), the whole call within `max_call_s`."""
    if not await _within(call.responded, guard_s, call, timer) and not call.finished.is_set():
        log.warning("call.response_missing", waited_s=guard_s)
        call.link_lost()
        call.finished.set()
    if call.answered.is_set():
        log.info("call.answered")
    await _within(call.finished, max_call_s, call, timer)


async def _within(event: asyncio.Event, seconds: float, call: Call, timer: Sleep) -> bool:
    """Wait for `event` (or the call's end) at most `seconds` on the injected timer."""
    if event.is_set() or call.finished.is_set():
        return event.is_set()
    waits = [
        asyncio.ensure_future(event.wait()),
        asyncio.ensure_future(call.finished.wait()),
        asyncio.ensure_future(timer(seconds)),
    ]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
    return event.is_set()


async def settle_call(
    call: Call,
    campaign: Campaign,
    *,
    repository: CampaignRepository,
    ended_at: datetime,
    metrics: Metrics,
    log: Any,
) -> NextStep | None:
    """Write what `call` came to and the contact's next step; None when already settled."""
    observation = call.observation
    outcome = classify(observation, routed_to_queue=call.routed_to_queue)
    duration_s = (
        round((ended_at - call.answered_at).total_seconds(), 3) if call.answered_at else 0.0
    )
    causes = [c for c in (observation.other_channel_cause, observation.channel_cause) if c]
    settlement = Settlement(
        attempt_id=call.attempt_id,
        outcome=outcome,
        ended_at=ended_at,
        answered_at=call.answered_at,
        reason_code=observation.reason,
        dial_status=observation.dial_status,
        hangup_cause=causes[0] if causes else observation.channel_cause,
        duration_s=duration_s,
        agent_wait_s=agent_wait_s(observation),
    )
    facts = await repository.attempt_facts(call.attempt_id, outcome)
    if facts is None:
        return None
    step = next_step(
        outcome,
        disposition=facts.disposition,
        attempts_with_outcome=facts.attempts_with_outcome,
        attempts_total=facts.attempts_total,
        retry=campaign.retry,
        max_total_attempts=campaign.max_total_attempts,
    )
    due_at = ended_at + timedelta(seconds=step.delay_s or 0) if step.state == "pending" else None
    if not await repository.settle(settlement, step, next_attempt_at=due_at):
        return None
    log.info(
        "call.finished",
        outcome=outcome.value,
        duration_s=duration_s,
        agent_wait_s=settlement.agent_wait_s,
    )
    metrics.call_finished(
        call.campaign,
        outcome.value,
        agent_wait_s=settlement.agent_wait_s,
        late=reached_agent_late(observation),
    )
    if due_at is not None:
        log.info(
            "call.retry_scheduled",
            outcome=outcome.value,
            delay_s=step.delay_s,
            next_attempt_at=due_at.isoformat(),
        )
    else:
        log.info("contact.finished", state=step.state, why=step.why, disposition=facts.disposition)
    return step


async def record_disposition(
    attempt_id: str,
    event: Mapping[str, str],
    campaign: Campaign,
    *,
    repository: CampaignRepository,
    now: datetime,
    log: Any,
) -> None:
    """Keep the disposition an `OutreachDisposition` UserEvent carries."""
    disposition = disposition_from(event, campaign.digit_dispositions)
    if await repository.record_disposition(attempt_id, disposition, now):
        log.info("call.disposition_recorded", attempt_id=attempt_id, disposition=disposition)
