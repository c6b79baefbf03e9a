"""What the timeline's followed entries cause: escalation rules and webhooks (pure logic).

`decide(entries, settings, now)` turns entries (`dialer.timeline.FOLLOWED_KINDS`) into
`FollowUpAction`s that the store writes in the transaction that unmarks them
(`dialer.store.timeline.TimelineStore.follow_up`):

- `contact_finished` -> webhook `contact.finished`; a `contact_failed` rule on a failed one
  (attempts used up, or no retry rule for its outcome) -> its `send_stage` SMS for the order;
- `disposition` -> a `disposition` rule -> its `send_stage` SMS (a confirmation, say);
- `sms_reply` matching a `reply` rule, from a number with a callback pending -> the callback
  cancelled, webhook `redelivery.requested` (`request_redelivery`), its `send_stage` SMS;
- `sms_delivered` / `sms_dead` / `opted_out` -> webhooks `sms.delivered` / `sms.failed` /
  `sms.opted_out`.

A rule acts once per contact (a reply: per order), whatever the entries that would trigger it
again (`FollowUpAction.rule` + `subject`); a webhook is one outbox row per `(order_id, stage)`
where the stage names the event and its subject (`webhook:contact.finished:42`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from dialer.config import Settings
from dialer.config.followup import EscalationRule
from dialer.logs import get_logger
from dialer.messaging.templates import quiet_hours_end, render_message
from dialer.phones import InvalidNumber, parse
from dialer.timeline import FollowUpAction, NewEntry, QueuedMessage, TimelineEntry
from notifiers import segments

__all__ = ["decide", "webhook_stage"]

log = get_logger(__name__)

WEBHOOK_PREFIX = "webhook:"


def webhook_stage(event: str, subject: str) -> str:
    """The outbox stage of a webhook: one row per event and subject (and order)."""
    return f"{WEBHOOK_PREFIX}{event}:{subject}"


def decide(entries: list[TimelineEntry], settings: Settings, now: datetime) -> list[FollowUpAction]:
    """Every action the entries cause, in the order of the entries. An entry that cannot be
    followed up (a bug, a malformed detail) is logged and passed over: it must not hold up the
    entries after it forever."""
    actions: list[FollowUpAction] = []
    for entry in entries:
        try:
            actions.extend(_actions(entry, settings, now))
        except Exception:
            log.exception("follow_up.entry_failed", entry_id=entry.id, kind=entry.kind)
    return actions


def _actions(entry: TimelineEntry, settings: Settings, now: datetime) -> Iterator[FollowUpAction]:
    contact = entry.detail.get("contact_id")
    if entry.kind == "contact_finished":
        yield from _webhook(settings, entry, "contact.finished", f"contact-{contact}", now)
        if entry.reason == "failed":
            yield from _rules(settings, entry, "contact_failed", f"contact-{contact}", now)
    elif entry.kind == "disposition":
        for name, rule in _matching(settings, entry, "disposition"):
            if entry.reason in rule.dispositions:
                yield from _rule_action(settings, name, rule, entry, f"contact-{contact}", now)
    elif entry.kind == "sms_reply":
        yield from _reply(entry, settings, now)
    elif entry.kind == "sms_delivered":
        subject = f"message-{entry.detail.get('message_id')}"
        yield from _webhook(settings, entry, "sms.delivered", subject, now)
    elif entry.kind == "sms_dead":
        subject = f"message-{entry.detail.get('message_id')}"
        yield from _webhook(settings, entry, "sms.failed", subject, now)
    elif entry.kind == "opted_out":
        yield from _webhook(settings, entry, "sms.opted_out", f"entry-{entry.id}", now)


def _matching(
    settings: Settings, entry: TimelineEntry, on: str
) -> Iterator[tuple[str, EscalationRule]]:
    for name, rule in settings.escalations.items():
        if rule.on == on and rule.campaign in (None, entry.campaign):
            yield name, rule


def _rules(
    settings: Settings, entry: TimelineEntry, on: str, subject: str, now: datetime
) -> Iterator[FollowUpAction]:
    for name, rule in _matching(settings, entry, on):
        yield from _rule_action(settings, name, rule, entry, subject, now)


def _rule_action(
    settings: Settings,
    name: str,
    rule: EscalationRule,
    entry: TimelineEntry,
    subject: str,
    now: datetime,
    *,
    order_id: str | None = None,
    cancel: tuple[int, ...] = (),
) -> Iterator[FollowUpAction]:
    """One rule's action: its SMS stage, its re-delivery request, and an `escalated` entry."""
    order = order_id or entry.order_id or ""
    messages: list[QueuedMessage] = []
    did = []
    if rule.send_stage is not None and order:
        sms = _stage_message(settings, rule.send_stage, entry, order, now)
        if sms is not None:
            messages.append(sms)
            did.append(f"sms {rule.send_stage}")
    if rule.request_redelivery:
        did.append("redelivery requested")
        if cancel:
            did.append("callback cancelled")
        hook = _webhook_message(
            settings, entry, "redelivery.requested", order, now, order_id=order, extra={}
        )
        if hook is not None:
            messages.append(hook)
    escalated = NewEntry(
        entry.phone,
        now,
        "escalated",
        name,
        campaign=entry.campaign,
        order_id=order or None,
        detail={"did": did, "because": entry.kind, "entry_id": entry.id},
    )
    yield FollowUpAction(
        subject,
        now,
        rule=name,
        messages=tuple(messages),
        cancel_contacts=cancel,
        cancel_reason=f"escalation {name}: redelivery requested",
        entries=(escalated,),
    )


def _reply(entry: TimelineEntry, settings: Settings, now: datetime) -> Iterator[FollowUpAction]:
    text = entry.reason or ""
    pending: list[Mapping[str, Any]] = entry.detail.get("pending") or []
    for name, rule in settings.escalations.items():
        if rule.on != "reply" or not rule.matches_reply(text):
            continue
        for callback in pending:
            if rule.campaign not in (None, callback.get("campaign")):
                continue
            order = str(callback.get("order_id") or "")
            contact = int(callback["contact_id"])
            subject = f"order-{order}" if order else f"contact-{contact}"
            about = TimelineEntry(
                entry.id,
                entry.phone,
                entry.at,
                entry.kind,
                entry.reason,
                None,
                callback.get("campaign"),
                order or None,
                {**entry.detail, "contact_id": contact},
            )
            yield from _rule_action(
                settings, name, rule, about, subject, now, order_id=order, cancel=(contact,)
            )


def _stage_message(
    settings: Settings, stage: str, entry: TimelineEntry, order: str, now: datetime
) -> QueuedMessage | None:
    """The stage's SMS for the order, to the entry's number (a mobile only)."""
    try:
        if not parse(entry.phone, settings.default_region).is_mobile:
            return None
    except InvalidNumber:
        return None
    notifications = settings.notifications
    stage_settings = notifications.stages[stage]
    context = entry.detail.get("context") or {}
    data = {key: value for key, value in context.items() if isinstance(value, str | int | float)}
    body, templates = render_message(
        stage_settings,
        notifications,
        stage=stage,
        order_id=order,
        customer_name=str(entry.detail.get("name") or ""),
        data=data,
    )
    held = None if stage_settings.urgent else quiet_hours_end(now, notifications.quiet_hours)
    return QueuedMessage(
        "sms", order, stage, entry.phone, body, held or now, segments(body).parts, templates
    )


def _webhook(
    settings: Settings, entry: TimelineEntry, event: str, subject: str, now: datetime
) -> Iterator[FollowUpAction]:
    message = _webhook_message(settings, entry, event, subject, now)
    if message is not None:
        yield FollowUpAction(subject, now, messages=(message,))


def _webhook_message(
    settings: Settings,
    entry: TimelineEntry,
    event: str,
    subject: str,
    now: datetime,
    *,
    order_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> QueuedMessage | None:
    hooks = settings.webhooks
    if hooks.url is None or event not in hooks.events:
        return None
    order = order_id if order_id is not None else (entry.order_id or "")
    stage = webhook_stage(event, subject)
    detail = entry.detail
    body: dict[str, Any] = {
        "id": f"{stage.removeprefix(WEBHOOK_PREFIX)}/{order}",
        "event": event,
        "occurred_at": entry.at.isoformat(),
        "order_id": order or None,
        "phone": entry.phone,
        "campaign": entry.campaign,
    }
    if event == "contact.finished":
        body.update(
            state=entry.reason,
            outcome=detail.get("outcome"),
            disposition=detail.get("disposition"),
            why=detail.get("why"),
        )
    elif event == "redelivery.requested":
        body.update(reply=entry.reason if entry.kind == "sms_reply" else None, because=entry.kind)
        body.update(disposition=entry.reason if entry.kind == "disposition" else None)
    elif event in ("sms.delivered", "sms.failed"):
        body.update(stage=detail.get("stage"), message_id=detail.get("message_id"))
        body.update(reason=entry.reason)
    elif event == "sms.opted_out":
        body.update(source=entry.reason)
    body.update(extra or {})
    text = json.dumps(body, ensure_ascii=False, sort_keys=True)
    return QueuedMessage("webhook", order, stage, entry.phone, text, now)
