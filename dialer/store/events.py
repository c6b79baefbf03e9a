"""Order events and what they cause: the event, its message, its contacts.

- `accept_events` writes a batch of events in ONE transaction: each event, its message (at
  most one per order and stage, none to an opted-out number) and its contacts, and the answer
  made from what was written. An event_id already stored (or earlier in the same batch) writes
  nothing: the stored event comes back. Rows are inserted with ON CONFLICT DO NOTHING and
  RETURNING, so a duplicate never fails the other events of its batch.
- The outbox side (claims, outcomes, delivery reports, dead letters) is `dialer.store.outbox`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.messaging.ports import (
    AcceptedEvent,
    IncomingEvent,
    StoredEvent,
)
from dialer.store import contacts as contact_rows
from dialer.store.engine import Store, batch_fails_alone, reading, writing
from dialer.store.notify import announce_queued
from dialer.store.schema import events, opt_outs, outbound_messages, templates_json
from dialer.store.timeline import add_entries
from dialer.timeline import NewEntry

__all__ = ["EventStore"]

_m = outbound_messages.c


@dataclass(frozen=True)
class _Inserts:
    events: Any
    messages: Any


@functools.cache
def _inserts(dialect: str) -> _Inserts:
    """INSERT ... ON CONFLICT DO NOTHING RETURNING for the dialect (both support it)."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    return _Inserts(
        events=insert(events)
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(events.c.id, events.c.event_id),
        messages=insert(outbound_messages)
        .on_conflict_do_nothing(index_elements=["order_id", "stage"])
        .returning(_m.id, _m.order_id, _m.stage),
    )


_STORED_EVENTS = sa.select(events.c.event_id, events.c.payload, events.c.response).where(
    events.c.event_id.in_(sa.bindparam("event_ids", expanding=True))
)
_OPT_OUTS = sa.select(opt_outs.c.phone, opt_outs.c.scope).where(
    opt_outs.c.phone.in_(sa.bindparam("phones", expanding=True))
)
_SET_RESPONSE = (
    events.update()
    .where(events.c.id == sa.bindparam("b_id"))
    .values(response=sa.bindparam("b_response", type_=events.c.response.type))
)


async def _opted_out(
    conn: AsyncConnection, created: Sequence[IncomingEvent]
) -> dict[str, set[str]]:
    """The opt-out scopes of every number these events would message or call."""
    phones = {item.phone for item in created if item.message is not None}
    phones.update(contact.phone for item in created for contact in item.new_contacts)
    scopes: dict[str, set[str]] = {}
    if phones:
        for row in await conn.execute(_OPT_OUTS, {"phones": sorted(phones)}):
            scopes.setdefault(row.phone, set()).add(row.scope)
    return scopes


def _blocked(opted_out: Mapping[str, set[str]], phone: str, scope: str) -> bool:
    scopes = opted_out.get(phone, set())
    return scope in scopes or "all" in scopes


async def _insert_messages(
    conn: AsyncConnection,
    inserts: _Inserts,
    created: Sequence[IncomingEvent],
    opted_out: Mapping[str, set[str]],
) -> tuple[dict[str, int], dict[str, str]]:
    """(message id by event_id, why no message by event_id): at most one per order and
    stage (the first event of the batch wins), none to a number opted out of SMS."""
    skipped: dict[str, str] = {}
    wanted: dict[tuple[str, str], IncomingEvent] = {}
    for item in created:
        if item.message is None:
            continue
        if _blocked(opted_out, item.phone, "sms"):
            skipped[item.event_id] = "opted_out"
        elif (item.order_id, item.stage) in wanted:
            skipped[item.event_id] = "already_queued"
        else:
            wanted[(item.order_id, item.stage)] = item
    if not wanted:
        return {}, skipped
    rows = [
        {
            "event_id": item.event_id,
            "order_id": item.order_id,
            "stage": item.stage,
            "phone": item.message.phone,
            "body": item.message.body,
            "segments": item.message.segments,
            "status": "queued",
            "next_attempt_at": item.message.next_attempt_at,
            "templates": templates_json(item.message.templates),
            "created_at": item.now,
            "updated_at": item.now,
        }
        for key, item in sorted(wanted.items())
        if item.message is not None
    ]
    ids = {(row.order_id, row.stage): row.id for row in await conn.execute(inserts.messages, rows)}
    message_ids: dict[str, int] = {}
    for key, item in wanted.items():
        if key in ids:
            message_ids[item.event_id] = ids[key]
        else:
            skipped[item.event_id] = "already_queued"
    return message_ids, skipped


async def _add_contacts(
    conn: AsyncConnection, item: IncomingEvent, opted_out: Mapping[str, set[str]]
) -> list[dict[str, Any]]:
    """The contacts of one event (none opted out of calls), merged as `contacts` does."""
    added: list[dict[str, Any]] = []
    for contact in item.new_contacts:
        if _blocked(opted_out, contact.phone, "call"):
            added.append({"campaign": contact.campaign, "skipped": "opted_out"})
            continue
        campaign_id = await contact_rows.ensure_campaign(conn, contact.campaign, contact.kind)
        result = await contact_rows.add_contact(
            conn,
            campaign_id=campaign_id,
            phone=contact.phone,
            due_at=item.now,
            now=item.now,
            name=contact.name,
            context=contact.context,
        )
        added.append(
            {
                "campaign": contact.campaign,
                "contact_id": result.contact_id,
                "merged": result.merged,
                "waiting": result.waiting,
            }
        )
    return added


def _timeline(
    created: Sequence[IncomingEvent], done: Mapping[str, AcceptedEvent]
) -> list[NewEntry]:
    """What the timeline keeps of these events: each received, its message, its contacts."""
    entries = []
    for item in created:
        accepted = done[item.event_id]
        order = item.order_id
        entries.append(NewEntry(item.phone, item.now, "event_received", item.stage, order_id=order))
        if accepted.message_id is not None and item.message is not None:
            later = item.message.next_attempt_at > item.now
            entries.append(
                NewEntry(
                    item.phone,
                    item.now,
                    "sms_queued",
                    "quiet_hours" if later else item.stage,
                    until=item.message.next_attempt_at if later else None,
                    order_id=order,
                    detail={"stage": item.stage, "message_id": accepted.message_id},
                )
            )
        elif accepted.message_skipped or item.message_skipped:
            why = accepted.message_skipped or item.message_skipped
            detail = {"stage": item.stage}
            entries.append(
                NewEntry(item.phone, item.now, "sms_skipped", why, order_id=order, detail=detail)
            )
        for contact in accepted.contacts:
            skipped = contact.get("skipped")
            entries.append(
                NewEntry(
                    item.phone,
                    item.now,
                    "contact_skipped" if skipped else "contact_added",
                    skipped or ("merged" if contact.get("merged") else "new"),
                    campaign=contact["campaign"],
                    order_id=order,
                    detail={"contact_id": contact.get("contact_id")},
                )
            )
    return entries


class EventStore:
    """Order events and what they cause, on an open store (messaging's `EventRepository`)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine
        self.dialect = store.dialect

    def fails_alone(self, exc: Exception) -> bool:
        return batch_fails_alone(exc)

    async def find_event(self, event_id: str) -> StoredEvent | None:
        async with reading(self.engine) as conn:
            row = (await conn.execute(_STORED_EVENTS, {"event_ids": [event_id]})).one_or_none()
        return None if row is None else StoredEvent(row.payload, row.response)

    async def accept_events(self, batch: Sequence[IncomingEvent]) -> list[AcceptedEvent]:
        """Write the events of `batch` in one transaction (see the module docstring); what became
        of each, in the order of `batch`."""
        first: dict[str, int] = {}
        for index, item in enumerate(batch):
            first.setdefault(item.event_id, index)
        # Sorted, so that two PostgreSQL workers writing overlapping batches take locks in order.
        leaders = sorted((batch[index] for index in first.values()), key=lambda e: e.event_id)
        done: dict[str, AcceptedEvent] = {}
        inserts = _inserts(self.dialect)
        async with writing(self.engine) as conn:
            event_rows = [
                {
                    "event_id": item.event_id,
                    "order_id": item.order_id,
                    "stage": item.stage,
                    "phone": item.phone,
                    "payload": dict(item.payload),
                    "received_at": item.now,
                }
                for item in leaders
            ]
            inserted = {
                row.event_id: row.id for row in await conn.execute(inserts.events, event_rows)
            }
            known = [item.event_id for item in leaders if item.event_id not in inserted]
            if known:
                for row in await conn.execute(_STORED_EVENTS, {"event_ids": known}):
                    stored = StoredEvent(row.payload, row.response)
                    done[row.event_id] = AcceptedEvent(False, stored, None, None, [])
            created = [item for item in leaders if item.event_id in inserted]
            if created:
                opted_out = await _opted_out(conn, created)
                message_ids, skipped = await _insert_messages(conn, inserts, created, opted_out)
                responses = []
                for item in created:
                    added = await _add_contacts(conn, item, opted_out)
                    message_id = message_ids.get(item.event_id)
                    why = skipped.get(item.event_id)
                    accepted = AcceptedEvent(
                        True, StoredEvent(dict(item.payload), None), message_id, why, added
                    )
                    response = item.respond(accepted)
                    responses.append({"b_id": inserted[item.event_id], "b_response": response})
                    stored = StoredEvent(dict(item.payload), response)
                    done[item.event_id] = AcceptedEvent(True, stored, message_id, why, added)
                await conn.execute(_SET_RESPONSE, responses)
                if message_ids:
                    await announce_queued(conn)
                await add_entries(conn, _timeline(created, done))
        results = []
        for index, item in enumerate(batch):
            accepted = done[item.event_id]
            if first[item.event_id] != index:  # the same event_id earlier in this batch
                accepted = AcceptedEvent(False, accepted.stored, None, None, [])
            results.append(accepted)
        return results
