"""The store's engine: the connection to SQLite or PostgreSQL, migrated at open.

SQLAlchemy 2 Core, async. SQLite (aiosqlite, WAL) is the embedded default; PostgreSQL (asyncpg)
serves several workers sharing one campaign. `Store.open` migrates the schema to the head of
``dialer/store/migrations`` (alembic, run in code); the tables are `dialer.store.schema`.

Exceptions::

    StoreError    the store cannot be created, reached or migrated; the message names the path
                  or host/port/database and the reason, never a password, and is fit to show
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from dialer.health import StoreUnavailable

StoreDialect = Literal["sqlite", "postgresql"]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
CONNECT_TIMEOUT_S = 5.0
PING_TIMEOUT_S = 2.0
SQLITE_BUSY_TIMEOUT_MS = 5_000
POSTGRES_DEFAULT_PORT = 5432
# Taken with pg_advisory_xact_lock while migrating, so two workers starting at once take turns.
MIGRATION_LOCK_KEY = 0x70_62_78_6F  # "pbxo"


class StoreError(Exception):
    """The store cannot be created, reached or migrated. The message is fit to show a user."""


def alembic_config(connection: Connection | None = None) -> Config:
    """An alembic config for our migrations; env.py runs them on `connection`."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision the migrations lead to."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}")
    return head


def _upgrade_to_head(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
        )
    command.upgrade(alembic_config(connection), "head")


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


@dataclass(frozen=True)
class _Target:
    url: URL
    dialect: StoreDialect
    location: str  # the sqlite file, or postgresql://user@host:port/db; never a password


_URL_FORMS = "sqlite+aiosqlite:///PATH.db or postgresql+asyncpg://USER@HOST:PORT/DATABASE"


def _parse_url(url: str) -> _Target:
    """Check the url; whatever driver it names, the store uses aiosqlite or asyncpg."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"invalid store url: expected {_URL_FORMS}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            raise StoreError(f"the store must be a SQLite file: expected {_URL_FORMS}")
        path = Path(database).absolute()
        sqlite_url = parsed.set(drivername="sqlite+aiosqlite", database=str(path))
        return _Target(sqlite_url, "sqlite", str(path))
    if backend == "postgresql":
        host, port = parsed.host or "localhost", parsed.port or POSTGRES_DEFAULT_PORT
        user = f"{parsed.username}@" if parsed.username else ""
        location = f"postgresql://{user}{host}:{port}/{parsed.database or ''}"
        return _Target(parsed.set(drivername="postgresql+asyncpg"), "postgresql", location)
    raise StoreError(f"unsupported store url scheme {parsed.drivername!r}: expected {_URL_FORMS}")


def _create_sqlite_file(path: Path) -> None:
    """Create the directories and the file in WAL mode, so that a bad path is reported plainly.

    Synchronous on purpose: switching to WAL fails at once (no busy wait) while another
    connection holds a lock, so it is done here, before the pool opens connections.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):
            pass
    except FileExistsError as exc:  # mkdir met a file where a directory should be
        raise StoreError(
            f"cannot create the store at {path}: {exc.filename} is not a directory"
        ) from exc
    except OSError as exc:
        raise StoreError(f"cannot create the store at {path}: {exc.strerror or exc}") from exc
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)) as db:
            _use_wal(db)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open the store at {path}: {exc}") from exc


def _use_wal(dbapi_connection: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode")
        if cursor.fetchone()[0] != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
    finally:
        cursor.close()


def _on_sqlite_connect(dbapi_connection: Any, _connection_record: Any) -> None:
    # Let SQLAlchemy emit BEGIN (see _on_sqlite_begin), not the sqlite3 module's legacy guesswork.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()
    _use_wal(dbapi_connection)


def _on_sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front, waiting up to busy_timeout for it; a DEFERRED
    # transaction that reads and then writes fails at once with "database is locked" instead.
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def _create_engine(target: _Target, connect_timeout_s: float) -> AsyncEngine:
    if target.dialect == "sqlite":
        # One connection: SQLite has one writer anyway, and every transaction here begins
        # IMMEDIATE; with several pooled connections they would wait in SQLite's busy handler
        # (which sleeps), while with one they queue in asyncio and run back to back.
        engine = create_async_engine(target.url, pool_size=1, max_overflow=0)
        sa.event.listen(engine.sync_engine, "connect", _on_sqlite_connect)
        sa.event.listen(engine.sync_engine, "begin", _on_sqlite_begin)
        return engine
    return create_async_engine(
        target.url, pool_pre_ping=True, connect_args={"timeout": connect_timeout_s}
    )


def _reason(exc: BaseException, password: str | None) -> str:
    """The innermost cause of a driver error, on one line, without the password."""
    root: BaseException = exc
    while not isinstance(root, TimeoutError):
        cause = root.orig if isinstance(root, DBAPIError) else root.__cause__
        if cause is None:
            break
        root = cause
    if isinstance(root, TimeoutError):
        reason = "timed out"
    elif isinstance(root, OSError) and root.strerror:
        reason = root.strerror
    else:
        reason = (str(root).strip() or type(root).__name__).splitlines()[0]
    return reason.replace(password, "***") if password else reason


_DRIVER_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


_UNAVAILABLE = (OperationalError, InterfaceError, OSError, TimeoutError)
"""Failures of the store itself (unreachable, timed out, locked), not of what was asked of it."""


@contextlib.asynccontextmanager
async def writing(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """`engine.begin()`, with the store's own failures raised as `StoreUnavailable`."""
    try:
        async with engine.begin() as connection:
            yield connection
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(_reason(exc, engine.url.password)) from exc


@contextlib.asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """`engine.connect()`, with the store's own failures raised as `StoreUnavailable`."""
    try:
        async with engine.connect() as connection:
            yield connection
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(_reason(exc, engine.url.password)) from exc


def batch_fails_alone(exc: Exception) -> bool:
    """Whether a failed batch write may be the fault of one of its items (a constraint, a value
    refused) or of its size (a deadlock), so writing them one by one lets the others through.
    False when the store itself failed (unreachable, locked, timed out): then the whole batch
    fails at once."""
    if isinstance(exc, DBAPIError):
        # A PostgreSQL deadlock between two workers' batches: one event at a time cannot.
        deadlock = getattr(exc.orig, "pgcode", None) in ("40P01", "40001")
        return deadlock or isinstance(exc, IntegrityError | DataError)
    return not isinstance(exc, OSError | TimeoutError | StoreUnavailable)


@dataclass(frozen=True)
class Store:
    """The open store: an async engine on SQLite or PostgreSQL, at the migrations' head."""

    engine: AsyncEngine
    dialect: StoreDialect
    location: str
    ping_timeout_s: float = PING_TIMEOUT_S

    @classmethod
    async def open(
        cls, url: str, *, migrate: bool = True, connect_timeout_s: float = CONNECT_TIMEOUT_S
    ) -> Store:
        """Connect to the store at `url` (an SQLAlchemy async url), migrating it to head."""
        target = _parse_url(url)
        if target.dialect == "sqlite":
            _create_sqlite_file(Path(target.location))
        store = cls(
            engine=_create_engine(target, connect_timeout_s),
            dialect=target.dialect,
            location=target.location,
        )
        doing = "cannot connect to" if target.dialect == "postgresql" else "cannot open"
        try:
            async with asyncio.timeout(connect_timeout_s):
                async with store.engine.connect() as connection:
                    await connection.execute(sa.text("SELECT 1"))
            if migrate:
                doing = "cannot migrate"
                async with store.engine.begin() as connection:
                    await connection.run_sync(_upgrade_to_head)
        except CommandError as exc:  # e.g. a revision from a newer release
            await store.close()
            known = f"this release knows revisions up to {head_revision()}"
            raise StoreError(f"{doing} the store at {store.location}: {exc} ({known})") from exc
        except _DRIVER_ERRORS as exc:
            await store.close()
            raise store._error(doing, exc) from exc
        except BaseException:
            await store.close()
            raise
        return store

    async def ping(self) -> None:
        """Run SELECT 1 within `ping_timeout_s`; StoreError when the store is unreachable."""
        try:
            async with asyncio.timeout(self.ping_timeout_s):
                async with self.engine.connect() as connection:
                    await connection.execute(sa.text("SELECT 1"))
        except _DRIVER_ERRORS as exc:
            raise self._error("cannot reach", exc) from exc

    async def schema_revision(self) -> str | None:
        """The migration revision the schema is at; None for an empty database."""
        try:
            async with self.engine.connect() as connection:
                return await connection.run_sync(_current_revision)
        except _DRIVER_ERRORS as exc:
            raise self._error("cannot read the schema revision of", exc) from exc

    async def close(self) -> None:
        with contextlib.suppress(*_DRIVER_ERRORS):
            await self.engine.dispose()

    def _error(self, doing: str, exc: BaseException) -> StoreError:
        reason = _reason(exc, self.engine.url.password)
        return StoreError(f"{doing} the store at {self.location}: {reason}")
