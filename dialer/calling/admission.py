"""At the moment of dialling: may this contact be called now?

Checked for each contact just before its call, not only when it was loaded: the calling window
in the contact's own time zone (closed: pending again at the next opening), the allowed
countries (a toll-fraud guard), the DNC list and call opt-outs (refused: cancelled, with the
reason).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dialer.calling.dnc import DncList
from dialer.calling.ports import CampaignRepository, DueContact
from dialer.calling.rules import refusal_reason
from dialer.clock import Clock
from dialer.config import Campaign
from dialer.phones import InvalidNumber, parse
from dialer.windows import CallingWindows, is_open, next_open

__all__ = ["Admission"]


class Admission:
    """The checks of one campaign; a check that says no has already put the contact back or
    cancelled it, and logged why."""

    def __init__(
        self,
        campaign: Campaign,
        dnc: DncList,
        *,
        repository: CampaignRepository,
        now: Clock,
        default_region: str,
        log: Any,
    ) -> None:
        self.campaign = campaign
        self.dnc = dnc
        self.windows = CallingWindows.from_config(campaign.calling_windows, campaign.holidays)
        self.repository = repository
        self.now = now
        self.default_region = default_region
        self.log = log

    def zone(self, contact: DueContact) -> ZoneInfo:
        """The contact's own time zone, else the campaign's."""
        if contact.timezone:
            with contextlib.suppress(ZoneInfoNotFoundError, ValueError):
                return ZoneInfo(contact.timezone)
        return self.campaign.zone

    async def window_closed(self, contact: DueContact) -> bool:
        """Outside the calling window now: pending again when it next opens."""
        now = self.now()
        zone = self.zone(contact)
        if is_open(self.windows, now, zone):
            return False
        due_at = next_open(self.windows, now, zone) or now + timedelta(days=1)
        await self.repository.put_back(
            contact.id, due_at=due_at, now=now, reason="outside_calling_window"
        )
        self.log.info("contact.deferred", contact_id=contact.id, due_at=due_at.isoformat())
        return True

    async def refused(self, contact: DueContact) -> bool:
        """Never to be called (country not allowed, DNC, opted out): cancelled with why."""
        try:
            region = parse(contact.phone, self.default_region).region
        except InvalidNumber:
            region = None
        reason = refusal_reason(
            region=region,
            allowed_countries=self.campaign.allowed_countries,
            on_dnc_list=self.dnc.contains(contact.phone),
            opted_out=await self.repository.is_opted_out(contact.phone),
        )
        if reason is None:
            return False
        await self.repository.cancel(contact.id, reason=reason, now=self.now())
        self.log.info("contact.cancelled", contact_id=contact.id, reason=reason)
        return True
