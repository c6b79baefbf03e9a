"""Settling what a crash or a lost AMI link left behind, from what the PBX still has.

- `recover(runner, live, ...)`: attempts written but not settled (the daemon died, also by
  `kill -9`) are followed on when the PBX still has their channel (matched by Linkedid = the
  attempt id), else settled as they stand (`unknown` unless the events proved an outcome);
  contacts left `dialling` without an attempt are pending again.
- `reconcile(calls, live, ...)`: after a reconnect, the calls followed when the link dropped:
  those the PBX still has are followed on, the others end and are settled as they stand.
"""

from __future__ import annotations

from collections.abc import Iterable

from dialer.calling.calls import Call
from dialer.calling.ports import AttemptRow, CampaignRepository, LiveChannel
from dialer.calling.runner import CampaignRunner
from dialer.clock import Clock
from dialer.logs import get_logger

__all__ = ["by_linkedid", "reconcile", "recover"]

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
    tracked: Iterable[str],
    worker_id: str,
    now: Clock,
) -> None:
    """Follow or settle the runner's attempts left unsettled, release its orphan contacts."""
    at = now()
    channels = by_linkedid(live)
    followed_already = set(tracked)
    rows = await repository.unsettled_attempts(runner.campaign_id, owner=worker_id, now=at)
    followed = settled = 0
    for row in rows:
        if row.attempt_id in followed_already:
            continue
        call = _call_of(row, runner)
        up = channels.get(row.channel_id)
        if up:
            resume(call, up, now)
            runner.follow(call)
            followed += 1
        else:
            await runner.settle_lost(call)
            settled += 1
    released = await repository.release_orphans(
        runner.campaign_id, owner=worker_id, now=at, keep=runner.holding
    )
    if followed or settled or released:
        log.info(
            "campaign.recovered",
            campaign=runner.name,
            followed=followed,
            settled_unknown=settled,
            released=released,
        )


def reconcile(calls: Iterable[Call], live: list[LiveChannel], now: Clock) -> None:
    """After a reconnect: calls the PBX still has are followed on, the others finish now (their
    tasks settle them as they stand)."""
    channels = by_linkedid(live)
    for call in calls:
        up = channels.get(call.attempt_id)
        if up:
            resume(call, up, now)
            log.info("call.followed_after_reconnect", attempt_id=call.attempt_id)
        else:
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
