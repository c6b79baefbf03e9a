"""A campaign repository in memory, for `dialer simulate` on the virtual-time loop (where the
real store's threads and sockets cannot run). One process, one campaign at a time, nothing
kept: the same answers as `dialer.store.CampaignStore` for what a runner asks."""

from __future__ import annotations

import heapq
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from dialer.calling.ports import (
    AddedContact,
    AttemptFacts,
    AttemptRow,
    DueContact,
    NewContact,
    NextStep,
    Settlement,
)
from dialer.outcomes import Outcome

__all__ = ["MemoryCampaigns"]


@dataclass
class _Contact:
    id: int
    campaign_id: int
    item: NewContact
    state: str = "pending"
    due_at: datetime | None = None
    attempts: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    disposition: str | None = None


@dataclass
class _Attempt:
    contact_id: int
    outcome: str | None = None
    disposition: str | None = None


class MemoryCampaigns:
    """`CampaignRepository` in memory: contacts due by (priority, due time, id); a contact of a
    lower priority waits while the most urgent one is not due (a simulation loads one priority)."""

    def __init__(self) -> None:
        self.campaigns: dict[str, int] = {}
        self.states: dict[int, str] = {}
        self.contacts: dict[int, _Contact] = {}
        self.attempts: dict[str, _Attempt] = {}
        self._due: list[tuple[int, datetime, int]] = []  # (-priority, due_at, contact id)

    def finished(self) -> int:
        """Contacts finished (done or failed, not to be called again)."""
        return sum(1 for contact in self.contacts.values() if contact.state in ("done", "failed"))

    async def ensure_campaign(self, name: str, kind: str) -> int:
        return self.campaigns.setdefault(name, len(self.campaigns) + 1)

    async def campaign_state(self, campaign_id: int) -> str:
        return self.states.get(campaign_id, "running")

    async def set_campaign_state(self, campaign_id: int, state: str, now: datetime) -> None:
        self.states[campaign_id] = state

    async def is_opted_out(self, phone: str) -> bool:
        return False

    async def add_contacts(
        self, campaign_id: int, items: Sequence[NewContact], now: datetime
    ) -> list[AddedContact]:
        added = []
        for item in items:
            contact = _Contact(len(self.contacts) + 1, campaign_id, item)
            self.contacts[contact.id] = contact
            self._pending(contact, now)
            added.append(AddedContact(contact.id, merged=False, waiting=True))
        return added

    def _pending(self, contact: _Contact, due_at: datetime) -> None:
        contact.state, contact.due_at = "pending", due_at
        heapq.heappush(self._due, (-contact.item.priority, due_at, contact.id))

    async def claim_next(
        self, campaign_id: int, *, owner: str, now: datetime, lease_s: float
    ) -> DueContact | None:
        found = None
        while self._due and found is None:
            _, due_at, contact_id = self._due[0]
            contact = self.contacts[contact_id]
            if contact.state != "pending" or contact.due_at != due_at:
                heapq.heappop(self._due)  # stale: claimed or rescheduled since
                continue
            if due_at > now:  # the most urgent is not due (simulations use one priority)
                return None
            heapq.heappop(self._due)
            found = contact
        if found is None:
            return None
        found.state = "dialling"
        item = found.item
        return DueContact(
            id=found.id,
            campaign_id=found.campaign_id,
            phone=item.phone,
            name=item.name,
            timezone=item.timezone,
            priority=item.priority,
            context=dict(item.context or {}),
            attempts_count=found.attempts,
        )

    async def put_back(
        self, contact_id: int, *, due_at: datetime, now: datetime, reason: str = "deferred"
    ) -> None:
        """Pending again at `due_at` (a simulated day keeps no timeline: `reason` is unused)."""
        contact = self.contacts[contact_id]
        if contact.state == "dialling":
            self._pending(contact, due_at)

    async def cancel(self, contact_id: int, *, reason: str, now: datetime) -> None:
        contact = self.contacts[contact_id]
        contact.state, contact.disposition = "cancelled", reason

    async def next_due_at(self, campaign_id: int) -> datetime | None:
        while self._due:
            _, due_at, contact_id = self._due[0]
            contact = self.contacts[contact_id]
            if contact.state == "pending" and contact.due_at == due_at:
                return min(entry[1] for entry in self._due)
            heapq.heappop(self._due)
        return None

    async def start_attempt(self, contact: DueContact, *, attempt_id: str, now: datetime) -> None:
        self.attempts[attempt_id] = _Attempt(contact.id)
        self.contacts[contact.id].attempts += 1

    async def withdraw_attempt(
        self, attempt_id: str, contact_id: int, *, due_at: datetime, now: datetime
    ) -> None:
        self.attempts.pop(attempt_id, None)
        contact = self.contacts[contact_id]
        contact.attempts -= 1
        self._pending(contact, due_at)

    async def record_disposition(self, attempt_id: str, disposition: str, now: datetime) -> bool:
        attempt = self.attempts.get(attempt_id)
        if attempt is None:
            return False
        attempt.disposition = disposition
        self.contacts[attempt.contact_id].disposition = disposition
        return True

    async def attempt_facts(self, attempt_id: str, outcome: Outcome) -> AttemptFacts | None:
        attempt = self.attempts.get(attempt_id)
        if attempt is None or attempt.outcome is not None:
            return None
        contact = self.contacts[attempt.contact_id]
        return AttemptFacts(
            contact_id=contact.id,
            disposition=attempt.disposition,
            attempts_with_outcome=contact.outcomes.get(outcome.value, 0) + 1,
            attempts_total=contact.attempts,
        )

    async def settle(
        self, settlement: Settlement, step: NextStep, *, next_attempt_at: datetime | None
    ) -> bool:
        attempt = self.attempts.get(settlement.attempt_id)
        if attempt is None or attempt.outcome is not None:
            return False
        attempt.outcome = settlement.outcome.value
        contact = self.contacts[attempt.contact_id]
        contact.outcomes[attempt.outcome] = contact.outcomes.get(attempt.outcome, 0) + 1
        if step.state == "pending" and next_attempt_at is not None:
            self._pending(contact, next_attempt_at)
        else:
            contact.state = step.state
        return True

    async def answered_since(
        self, campaign_id: int, since: datetime, *, abandon_after_s: float
    ) -> list[tuple[datetime, bool]]:
        return []  # a simulation starts with no history

    async def unsettled_attempts(
        self, campaign_id: int, *, owner: str, now: datetime
    ) -> list[AttemptRow]:
        return []

    async def release_orphans(
        self, campaign_id: int, *, owner: str, now: datetime, keep: Collection[int] = ()
    ) -> int:
        return 0
