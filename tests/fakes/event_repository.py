"""An `EventRepository` in memory, for unit tests of the intake: what `dialer.store.EventStore`
does with a batch (one answer per event, an event_id written once, one message per order and
stage), and the two ways a write fails (one event's own fault, the store's)."""

from __future__ import annotations

from collections.abc import Sequence

from dialer.health import StoreUnavailable
from dialer.messaging.ports import AcceptedEvent, IncomingEvent, StoredEvent


class PoisonedEvent(Exception):
    """A write refused because of one event (as a constraint would refuse it)."""


class MemoryEvents:
    """Events by event_id and message ids by (order, stage). A batch holding an event_id of
    `poisoned` fails whole with `PoisonedEvent` (an event's fault: written again one by one);
    while `unavailable` is set, every batch fails with `StoreUnavailable` (the store's)."""

    def __init__(self, poisoned: frozenset[str] = frozenset()) -> None:
        self.poisoned = poisoned
        self.unavailable = False
        self.events: dict[str, StoredEvent] = {}
        self.messages: dict[tuple[str, str], int] = {}
        self.batches: list[list[str]] = []

    def fails_alone(self, exc: Exception) -> bool:
        return not isinstance(exc, StoreUnavailable)

    async def accept_events(self, batch: Sequence[IncomingEvent]) -> list[AcceptedEvent]:
        self.batches.append([item.event_id for item in batch])
        if self.unavailable:
            raise StoreUnavailable("the fake store is down")
        if self.poisoned.intersection(item.event_id for item in batch):
            raise PoisonedEvent(f"a poisoned event in {self.batches[-1]}")
        return [self._accept(item) for item in batch]

    def _accept(self, item: IncomingEvent) -> AcceptedEvent:
        known = self.events.get(item.event_id)
        if known is not None:
            return AcceptedEvent(False, known, None, None, [])
        message_id, skipped = None, None
        if item.message is not None:
            key = (item.order_id, item.stage)
            if key in self.messages:
                skipped = "already_queued"
            else:
                message_id = self.messages[key] = len(self.messages) + 1
        payload = dict(item.payload)
        written = AcceptedEvent(True, StoredEvent(payload, None), message_id, skipped, [])
        stored = StoredEvent(payload, item.respond(written))
        self.events[item.event_id] = stored
        return AcceptedEvent(True, stored, message_id, skipped, [])
