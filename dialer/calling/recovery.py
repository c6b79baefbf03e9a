"""Settling what a crash or a lost AMI link left behind, from what the PBX still has.

- `recover(runner, live, ...)`: attempts written but not settled (the daemon died, also by
  `kill -9`) are followed on when the PBX still has their channel (matched by Linkedid = the
  attempt id). One that ended meanwhile is settled from the PBX's own record of it: the
  dialplan's `outreach-record` hangup handler keeps an answered call's result in AstDB (family
  `outreach_YYYYMMDD`, the UTC day, key the attempt id: `answered agent=<interface or empty>
  digit=<digit or empty>`), so an answered call is settled answered (or abandoned, reached by no
  agent) with its disposition and never dialled again. Only an attempt the PBX has no trace of
  is settled as it stands (`unknown` unless the events proved an outcome) and retried by its
  rule. Contacts left `dialling` without an attempt are pending again.
- `reconcile(calls, live, ...)`: after a reconnect, the same for the calls followed when the
  link dropped.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dialer.calling.calls import Call
from dialer.calling.ports import AttemptRow, CampaignRepository, LiveChannel, Pbx
from dialer.calling.runner import CampaignRunner
from dialer.clock import Clock
from dialer.logs import get_logger

__all__ = ["PbxRecord", "by_linkedid", "parse_record", "pbx_record", "reconcile", "recover"]

RECORD_FAMILY = "outreach_{day:%Y%m%d}"
"""The AstDB family `outreach-record` writes into (extensions_outreach.conf), per UTC day."""
_RECORD = re.compile(r"^answered(?: epoch=\S*)? agent=(?P<agent>\S*) digit=(?P<digit>\S*)$")


@dataclass(frozen=True)
class PbxRecord:
    """What the dialplan kept of an answered call."""

    agent: str | None  # the interface of the agent who took it, if one did
    digit: str | None  # the IVR digit the customer pressed, if any


def parse_record(value: str) -> PbxRecord | None:
    """The record `outreach-record` writes, or None for a value it did not write."""
    match = _RECORD.match(value.strip())
    if match is None:
        return None
    return PbxRecord(agent=match.group("agent") or None, digit=match.group("digit") or None)


async def pbx_record(pbx: Pbx, attempt_id: str, started_at: datetime) -> PbxRecord | None:
    """The PBX's record of the attempt: looked up on the day it started and the next one (a
    call across midnight is recorded on the day it ended)."""
    day = started_at.astimezone(UTC)
    for offset in (0, 1):
        family = RECORD_FAMILY.format(day=day + timedelta(days=offset))
        value = await pbx.db_get(family, attempt_id)
        if value is not None:
            return parse_record(value)
    return None


def apply_record(call: Call, record: PbxRecord, now: Clock) -> None:
    """Fold what the PBX recorded: answered, taken by an agent or not, over."""
    at, wall = now().timestamp(), now()
    call.fold({"Event": "OriginateResponse", "Response": "Success", "Reason": "4"}, at, wall)
    if record.agent is not None:
        call.fold({"Event": "AgentConnect", "Interface": record.agent}, at, wall)
    for uniqueid in (call.channel_id, f"{call.channel_id}-2"):
        call.fold({"Event": "Hangup", "Uniqueid": uniqueid, "Cause": "16"}, at, wall)


log = get_logger(__name__)


def by_linkedid(live: Iterable[LiveChannel]) -> dict[str, list[LiveChannel]]:
    """The channels up, by the call (Linkedid) they belong to."""
    found: dict[str, list[LiveChannel]] = {}
    for channel in live:
        found.setdefault(channel.linkedid, []).append(channel)
    return found


async def recover(
    runner: CampaignRunner,
    live: list[LiveChannel],
    *,
    repository: CampaignRepository,
    pbx: Pbx,
    tracked: Iterable[str],
    worker_id: str,
    now: Clock,
) -> None:
    """Follow or settle the runner's attempts left unsettled, release its orphan contacts."""
    at = now()
    channels = by_linkedid(live)
    followed_already = set(tracked)
    rows = await repository.unsettled_attempts(runner.campaign_id, owner=worker_id, now=at)
    followed = from_pbx = without_trace = 0
    for row in rows:
        if row.attempt_id in followed_already:
            continue
        call = _call_of(row, runner)
        up = channels.get(row.channel_id)
        if up:
            resume(call, up, now)
            runner.follow(call)
            followed += 1
            continue
        record = await pbx_record(pbx, row.attempt_id, row.started_at)
        if record is None:
            log.info("call.settled_without_trace", campaign=runner.name, attempt_id=row.attempt_id)
            await runner.settle_lost(call)
            without_trace += 1
        else:
            apply_record(call, record, now)
            if record.digit is not None:
                await runner.record_disposition(call.attempt_id, {"Digit": record.digit})
            await runner.settle_ended(call)
            from_pbx += 1
    released = await repository.release_orphans(
        runner.campaign_id, owner=worker_id, now=at, keep=runner.holding
    )
    if followed or from_pbx or without_trace or released:
        log.info(
            "campaign.recovered",
            campaign=runner.name,
            followed=followed,
            settled_from_pbx=from_pbx,
            settled_unknown=without_trace,
            released=released,
        )


async def reconcile(
    calls: Iterable[Call],
    live: list[LiveChannel],
    *,
    pbx: Pbx,
    now: Clock,
    on_digit: Callable[[Call, str], Awaitable[None]],
) -> None:
    """After a reconnect: calls the PBX still has are followed on; the others finish now (their
    tasks settle them), from the PBX's record of them when it has one (`on_digit` keeps the
    IVR digit it holds, before the call is settled)."""
    channels = by_linkedid(live)
    for call in calls:
        up = channels.get(call.attempt_id)
        if up:
            resume(call, up, now)
            log.info("call.followed_after_reconnect", attempt_id=call.attempt_id)
            continue
        record = await pbx_record(pbx, call.attempt_id, call.started_at)
        if record is not None:
            apply_record(call, record, now)
            if record.digit is not None:
                await on_digit(call, record.digit)
        call.finished.set()


def _call_of(row: AttemptRow, runner: CampaignRunner) -> Call:
    return Call(
        attempt_id=row.attempt_id,
        campaign=runner.name,
        contact_id=row.contact_id,
        phone=row.phone,
        started_at=row.started_at,
        routed_to_queue=runner.routed_to_queue,
        on_change=lambda _: runner.update_cap(),
    )


def resume(call: Call, channels: list[LiveChannel], now: Clock) -> None:
    """The PBX still has the call: note its channels, and an answer we may have missed."""
    at, wall = now().timestamp(), now()
    for channel in channels:
        call.fold({"Event": "Newchannel", "Uniqueid": channel.uniqueid}, at, wall)
    ours = [c for c in channels if c.uniqueid in (call.channel_id, f"{call.channel_id}-2")]
    if any(c.up for c in ours) and call.observation.originate_response is None:
        call.fold({"Event": "OriginateResponse", "Response": "Success", "Reason": "4"}, at, wall)
    if len(channels) > len(ours):  # another leg on the call: an agent took it
        call.fold({"Event": "AgentConnect"}, at, wall)
