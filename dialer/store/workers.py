"""The workers' rows: leases renewed by heartbeats, dead ones declared once (`dialer.workers`).

Lease times are the database's own clock on PostgreSQL (`now()`), so the workers' hosts need
not agree on the time; on SQLite (one worker) the local clock. A worker is *live* while its row
is not declared dead; `not_live(column)` is the condition under which a row of work leased to
the worker named in `column` may be taken over. A live worker whose lease has run out stays
live until another worker's heartbeat declares it dead (`declare_expired`), in one UPDATE: from
then on it cannot renew, and whatever it leased may be taken.

SQLite serves one worker (`hold_sqlite_lock`): the second daemon on a file is refused.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from dialer.store.engine import Store, StoreError, writing
from dialer.store.schema import workers
from dialer.workers import WorkerIdentity, WorkerIdTaken

__all__ = ["SqliteLock", "WorkerStore", "database_now", "live_worker_ids", "not_live"]

_w = workers.c
DEAD_ROWS_KEPT = timedelta(days=1)


def live_worker_ids() -> sa.Select[tuple[str]]:
    return sa.select(_w.id).where(_w.declared_dead_at.is_(None))


def not_live(owner: sa.ColumnElement[str | None]) -> sa.ColumnElement[bool]:
    """The work leased to `owner` may be taken: no owner, or one not live (dead or unknown)."""
    return sa.or_(owner.is_(None), owner.not_in(live_worker_ids()))


def declared_dead(owner: sa.ColumnElement[Any]) -> sa.Exists:
    """The fence of a claim: its would-be owner was declared dead (it must claim nothing)."""
    return sa.exists().where(_w.id == owner, _w.declared_dead_at.is_not(None))


async def database_now(conn: AsyncConnection) -> datetime:
    """The lease clock: PostgreSQL's `now()`; the local clock on SQLite (one host anyway)."""
    if conn.dialect.name == "postgresql":
        value = await conn.scalar(sa.select(sa.func.now()))
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    return datetime.now(UTC)


class WorkerStore:
    """`dialer.workers.WorkerRegistry` on an open store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.engine = store.engine

    async def register(
        self, worker: WorkerIdentity, *, lease_s: float, replace_live: bool = False
    ) -> None:
        async with writing(self.engine) as conn:
            now = await database_now(conn)
            if conn.dialect.name == "sqlite":  # the file lock is held: no other worker lives
                await conn.execute(
                    workers.update()
                    .where(_w.id != worker.id, _w.declared_dead_at.is_(None))
                    .values(declared_dead_at=now)
                )
            query = sa.select(workers).where(_w.id == worker.id)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            earlier = (await conn.execute(query)).first()
            values = {
                "host": worker.host,
                "pid": worker.pid,
                "pbx": worker.pbx,
                "roles": ",".join(worker.roles),
                "started_at": now,
                "heartbeat_at": now,
                "lease_expires_at": now + timedelta(seconds=lease_s),
                "declared_dead_at": None,
            }
            if earlier is None:
                await conn.execute(workers.insert().values(id=worker.id, **values))
                return
            live = earlier.declared_dead_at is None and earlier.lease_expires_at >= now
            if live and not replace_live and conn.dialect.name == "postgresql":
                raise WorkerIdTaken(
                    worker.id,
                    host=earlier.host,
                    pid=earlier.pid,
                    lease_until=earlier.lease_expires_at.isoformat(),
                )
            await conn.execute(workers.update().where(_w.id == worker.id).values(**values))

    async def renew(self, worker_id: str, *, lease_s: float) -> bool:
        async with writing(self.engine) as conn:
            now = await database_now(conn)
            result = await conn.execute(
                workers.update()
                .where(_w.id == worker_id, _w.declared_dead_at.is_(None))
                .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
            )
        return bool(result.rowcount)

    async def declare_expired(self) -> list[str]:
        async with writing(self.engine) as conn:
            now = await database_now(conn)
            dead = (
                await conn.scalars(
                    workers.update()
                    .where(_w.declared_dead_at.is_(None), _w.lease_expires_at < now)
                    .values(declared_dead_at=now)
                    .returning(_w.id)
                )
            ).all()
            await conn.execute(  # work they left is taken over by then (or its owner unknown)
                workers.delete().where(_w.declared_dead_at < now - DEAD_ROWS_KEPT)
            )
        return sorted(dead)

    async def stop(self, worker_id: str) -> None:
        async with writing(self.engine) as conn:
            now = await database_now(conn)
            await conn.execute(
                workers.update()
                .where(_w.id == worker_id, _w.declared_dead_at.is_(None))
                .values(declared_dead_at=now)
            )

    async def rows(self) -> list[dict[str, object]]:
        """Every worker's row, for the API and the status page."""
        async with writing(self.engine) as conn:
            now = await database_now(conn)
            rows = (await conn.execute(sa.select(workers).order_by(_w.started_at))).all()
        return [
            {
                "id": row.id,
                "host": row.host,
                "pid": row.pid,
                "pbx": row.pbx,
                "roles": row.roles.split(","),
                "started_at": row.started_at.isoformat(),
                "heartbeat_age_s": round((now - row.heartbeat_at).total_seconds(), 1),
                "live": row.declared_dead_at is None,
                "declared_dead_at": row.declared_dead_at and row.declared_dead_at.isoformat(),
            }
            for row in rows
        ]


class SqliteLock:
    """One worker per SQLite file: an exclusive `flock` on `<file>.worker-lock`, held while
    the daemon runs (released by the kernel when the process dies, even by kill -9)."""

    def __init__(self, database: str) -> None:
        self.path = Path(f"{database}.worker-lock")
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        """Raises `StoreError` (one line, naming PostgreSQL) when another daemon holds it."""
        lock_file = self.path.open("a+")
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            holder = lock_file.read().strip() or "another process"
            lock_file.close()
            raise StoreError(
                f"the SQLite store {self.path.with_suffix('')} is in use by {holder}; "
                "SQLite serves one worker: to run several, use PostgreSQL "
                "(store.url: postgresql+asyncpg://USER@HOST:PORT/DATABASE)"
            ) from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}\n")
        lock_file.flush()
        self._file = lock_file

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
