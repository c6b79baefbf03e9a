"""`dialer sms dead` and `dialer sms replay ID`: the dead letters, from the command line."""

from __future__ import annotations

from datetime import datetime

from dialer.config import Settings
from dialer.logs import mask_phone
from dialer.store import OutboxStore, Store, sms_reports

__all__ = ["print_dead", "replay"]


async def print_dead(settings: Settings) -> int:
    store = await Store.open(settings.store.async_url)
    try:
        dead = await sms_reports.list_dead(store)
    finally:
        await store.close()
    if not dead:
        print("no dead messages")
        return 0
    print(f"{'ID':>6}  {'ORDER':<16} {'STAGE':<18} {'PHONE':<16} {'WHEN (UTC)':<19}  REASON")
    for message in dead:
        when = message.updated_at.strftime("%Y-%m-%d %H:%M:%S")
        code = f" [{message.error_code}]" if message.error_code else ""
        print(
            f"{message.id:>6}  {message.order_id:<16} {message.stage:<18} "
            f"{mask_phone(message.phone):<16} {when:<19}  {message.last_error or ''}{code}"
        )
    return 0


async def replay(settings: Settings, message_id: int, *, now: datetime) -> bool:
    from dialer.messaging.service import replay_dead_letter  # with the notifiers: only here

    store = await Store.open(settings.store.async_url)
    try:
        return await replay_dead_letter(OutboxStore(store), message_id, now=now)
    finally:
        await store.close()
