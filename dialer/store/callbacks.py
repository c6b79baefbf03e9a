"""Provider callbacks already acted on (messaging's `CallbackLedger`): a replay changes nothing.

`claim_callback` inserts (provider, callback id) and says whether it was new, in one statement
(INSERT ... ON CONFLICT DO NOTHING), so two deliveries of one callback at once act once.
"""

from __future__ import annotations

from datetime import datetime

from dialer.store.contacts import upsert
from dialer.store.engine import Store
from dialer.store.schema import seen_callbacks

__all__ = ["CallbackStore"]


class CallbackStore:
    """The callbacks seen, on an open store, each call in its own transaction."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    async def claim_callback(self, provider: str, callback_id: str, *, now: datetime) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                upsert(conn, seen_callbacks)
                .values(provider=provider, callback_id=callback_id, seen_at=now)
                .on_conflict_do_nothing(index_elements=["provider", "callback_id"])
            )
        return bool(result.rowcount)

    async def release_callback(self, provider: str, callback_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                seen_callbacks.delete().where(
                    seen_callbacks.c.provider == provider,
                    seen_callbacks.c.callback_id == callback_id,
                )
            )

    async def forget_callbacks(self, *, before: datetime) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                seen_callbacks.delete().where(seen_callbacks.c.seen_at < before)
            )
        return int(result.rowcount)
