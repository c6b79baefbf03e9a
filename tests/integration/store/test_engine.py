"""The store on real SQLite and PostgreSQL: migrations, unique keys, UTC times, bad locations."""

from __future__ import annotations

import asyncio
import re
import socket
import sqlite3
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import CheckConstraint, UniqueConstraint, event, inspect, select, update
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from dialer.outcomes import CALL_OUTCOMES
from dialer.store.engine import (
    SQLITE_BUSY_TIMEOUT_MS,
    Store,
    StoreError,
    alembic_config,
    head_revision,
)
from dialer.store.schema import (
    CAMPAIGN_STATES,
    CONTACT_STATES,
    MESSAGE_STATUSES,
    OPT_OUT_SCOPES,
    attempts,
    campaigns,
    contacts,
    metadata,
)

NOW = datetime(2025, 11, 26, 8, 30, 15, 123456, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


# --- rows: each call gives fresh values for every unique column ---------------------------------


def _unique() -> str:
    return uuid.uuid4().hex


def _phone() -> str:
    return f"+86138{uuid.uuid4().int % 10**8:08d}"


async def _insert(connection: AsyncConnection, table_name: str, row: dict[str, Any]) -> int:
    result = await connection.execute(metadata.tables[table_name].insert().values(row))
    primary_key = result.inserted_primary_key
    assert primary_key is not None
    return int(primary_key[0])


async def new_row(connection: AsyncConnection, table_name: str) -> dict[str, Any]:
    """A valid row for `table_name`, inserting the parent rows it refers to."""
    if table_name == "events":
        return {
            "event_id": f"ev-{_unique()}",
            "order_id": f"order-{_unique()}",
            "stage": "shipped",
            "phone": _phone(),
            "payload": {"customer": {"name": "王芳", "vip": False}},
        }
    if table_name == "outbound_messages":
        return {
            "event_id": f"ev-{_unique()}",
            "order_id": f"order-{_unique()}",
            "stage": "shipped",
            "phone": _phone(),
            "body": "【好物商城】您的订单已发货",
            "provider_message_id": f"SM{_unique()}",
        }
    if table_name == "campaigns":
        return {"name": f"refusal-{_unique()}", "kind": "refusal_callback"}
    if table_name == "contacts":
        campaign_id = await _insert(connection, "campaigns", await new_row(connection, "campaigns"))
        return {"campaign_id": campaign_id, "phone": _phone(), "context": {"order_id": "o-1"}}
    if table_name == "attempts":
        contact = await new_row(connection, "contacts")
        contact_id = await _insert(connection, "contacts", contact)
        return {
            "attempt_id": f"att-{_unique()}",
            "contact_id": contact_id,
            "campaign_id": contact["campaign_id"],
            "phone": contact["phone"],
            "channel_id": f"chan-{_unique()}",
            "started_at": NOW,
        }
    if table_name == "opt_outs":
        return {"phone": _phone(), "scope": "sms", "source": "sms_reply"}
    if table_name == "sessions":
        return {"id_hash": _unique(), "token_fingerprint": _unique(), "expires_at": NOW}
    if table_name == "seen_callbacks":
        return {"provider": "twilio", "callback_id": f"SM{_unique()}", "seen_at": NOW}
    if table_name == "follow_ups":
        return {"rule": f"rule-{_unique()}", "subject": f"contact-{_unique()}", "done_at": NOW}
    raise AssertionError(f"no row factory for {table_name}")


UNIQUE_KEYS = [
    ("events", ("event_id",)),
    ("outbound_messages", ("order_id", "stage")),
    ("outbound_messages", ("provider_message_id",)),
    ("campaigns", ("name",)),
    ("contacts", ("campaign_id", "phone")),
    ("attempts", ("attempt_id",)),
    ("attempts", ("channel_id",)),
    ("opt_outs", ("phone", "scope")),
    ("sessions", ("id_hash",)),
    ("seen_callbacks", ("provider", "callback_id")),
    ("follow_ups", ("rule", "subject")),
]

CHECKED_WORDS = [
    ("outbound_messages", "status", MESSAGE_STATUSES),
    ("campaigns", "state", CAMPAIGN_STATES),
    ("contacts", "state", CONTACT_STATES),
    ("contacts", "last_outcome", CALL_OUTCOMES),
    ("attempts", "outcome", CALL_OUTCOMES),
    ("opt_outs", "scope", OPT_OUT_SCOPES),
]


def _key_id(value: object) -> str:
    return ",".join(value) if isinstance(value, tuple) else str(value)


# --- migrations ----------------------------------------------------------------------------------


async def test_opening_a_new_store_migrates_it_to_head(store: Store) -> None:
    assert await store.schema_revision() == head_revision()


async def test_opening_a_migrated_store_again_changes_nothing(store_url: str) -> None:
    first = await Store.open(store_url)
    await first.close()
    statements: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", record)
    try:
        again = await Store.open(store_url)
    finally:
        event.remove(Engine, "before_cursor_execute", record)
    try:
        assert await again.schema_revision() == head_revision()
    finally:
        await again.close()
    writes = [s for s in statements if re.match(r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE)", s, re.I)]
    assert statements, "the listener saw nothing, so it proves nothing"
    assert writes == []


async def test_two_stores_opening_one_new_database_at_once_both_reach_head(
    store_url: str,
) -> None:
    opened = await asyncio.gather(Store.open(store_url), Store.open(store_url))
    try:
        revisions = [await each.schema_revision() for each in opened]
    finally:
        for each in opened:
            await each.close()
    assert revisions == [head_revision(), head_revision()]


async def test_store_migrated_by_a_newer_release_raises_a_store_error_naming_its_revision(
    store: Store, store_url: str
) -> None:
    async with store.engine.begin() as connection:
        await connection.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(
        StoreError, match=rf"^cannot migrate the store at .*'9999'.* {head_revision()}\)$"
    ):
        await Store.open(store_url)


async def test_migrated_schema_matches_the_tables_in_metadata(store: Store) -> None:
    def differences(connection: Connection) -> list[Any]:
        options = {"compare_type": True, "compare_server_default": True}
        context = MigrationContext.configure(connection, opts=options)
        return list(compare_metadata(context, metadata))

    async with store.engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_migrated_check_constraints_are_those_in_metadata(store: Store) -> None:
    def names(connection: Connection) -> set[str]:
        inspector = inspect(connection)
        return {
            str(check["name"])
            for table in metadata.tables
            for check in inspector.get_check_constraints(table)
        }

    expected = {
        str(constraint.name)
        for table in metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    async with store.engine.connect() as connection:
        assert await connection.run_sync(names) == expected


async def test_downgrading_to_base_leaves_no_table_of_ours(store: Store) -> None:
    async with store.engine.begin() as connection:
        await connection.run_sync(lambda c: command.downgrade(alembic_config(c), "base"))
        tables = await connection.run_sync(lambda c: inspect(c).get_table_names())
    assert set(tables) - {"alembic_version"} == set()
    assert await store.schema_revision() is None


# --- keys and constraints ------------------------------------------------------------------------


def test_every_unique_key_of_the_schema_has_a_duplicate_test() -> None:
    in_metadata = {
        (table.name, tuple(column.name for column in constraint.columns))
        for table in metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    }
    assert in_metadata == set(UNIQUE_KEYS)


@pytest.mark.parametrize(("table_name", "key"), UNIQUE_KEYS, ids=_key_id)
async def test_unique_key_rejects_a_duplicate(
    store: Store, table_name: str, key: tuple[str, ...]
) -> None:
    async with store.engine.begin() as connection:
        first = await new_row(connection, table_name)
        await _insert(connection, table_name, first)
        duplicate = await new_row(connection, table_name) | {
            column: first[column] for column in key
        }
    with pytest.raises(IntegrityError) as caught:
        async with store.engine.begin() as connection:
            await _insert(connection, table_name, duplicate)
    assert all(column in str(caught.value) for column in key), str(caught.value)


def test_every_check_constraint_of_the_schema_has_a_words_test() -> None:
    in_metadata = {
        (table.name, str(constraint.name).removeprefix(f"ck_{table.name}_"))
        for table in metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    assert in_metadata == {(table, column) for table, column, _ in CHECKED_WORDS}


@pytest.mark.parametrize(("table_name", "column", "words"), CHECKED_WORDS, ids=_key_id)
async def test_word_column_accepts_its_words_and_refuses_another(
    store: Store, table_name: str, column: str, words: tuple[str, ...]
) -> None:
    table = metadata.tables[table_name]
    async with store.engine.begin() as connection:
        row_id = await _insert(connection, table_name, await new_row(connection, table_name))
        for word in words:
            await connection.execute(
                update(table).where(table.c.id == row_id).values({column: word})
            )
    misspelt = update(table).where(table.c.id == row_id).values({column: "misspelt"})
    async with store.engine.connect() as connection:
        with pytest.raises(IntegrityError):
            await connection.execute(misspelt)


async def test_contact_of_a_missing_campaign_is_refused(store: Store) -> None:
    with pytest.raises(IntegrityError):
        async with store.engine.begin() as connection:
            await _insert(connection, "contacts", {"campaign_id": 424242, "phone": _phone()})


# --- times ---------------------------------------------------------------------------------------


async def _write_and_read_started_at(store: Store, started_at: datetime) -> datetime:
    async with store.engine.begin() as connection:
        row = await new_row(connection, "attempts") | {"started_at": started_at}
        attempt_id = await _insert(connection, "attempts", row)
        read = await connection.scalar(
            select(attempts.c.started_at).where(attempts.c.id == attempt_id)
        )
    assert isinstance(read, datetime)
    return read


async def test_utc_time_reads_back_timezone_aware_and_equal(store: Store) -> None:
    read = await _write_and_read_started_at(store, NOW)
    assert read.utcoffset() == timedelta(0)
    assert read == NOW


async def test_time_in_another_zone_reads_back_as_the_same_instant_in_utc(store: Store) -> None:
    in_shanghai = datetime(2025, 11, 26, 16, 30, 15, tzinfo=SHANGHAI)
    read = await _write_and_read_started_at(store, in_shanghai)
    assert read.utcoffset() == timedelta(0)
    assert read == in_shanghai


async def test_times_in_different_zones_compare_as_instants_in_sql(store: Store) -> None:
    at_0100_utc = datetime(2025, 11, 26, 9, 0, tzinfo=SHANGHAI)
    at_0200_utc = datetime(2025, 11, 26, 2, 0, tzinfo=UTC)
    async with store.engine.begin() as connection:
        due_ids = []
        for due_at in (at_0100_utc, at_0200_utc):
            row = await new_row(connection, "contacts") | {"next_attempt_at": due_at}
            due_ids.append(await _insert(connection, "contacts", row))
        query = select(contacts.c.id).where(
            contacts.c.id.in_(due_ids),
            contacts.c.next_attempt_at <= datetime(2025, 11, 26, 9, 30, tzinfo=SHANGHAI),
        )
        found = list(await connection.scalars(query))
    assert found == [due_ids[0]]


async def test_naive_time_is_refused(store: Store) -> None:
    async with store.engine.connect() as connection:
        row = await new_row(connection, "campaigns") | {"created_at": datetime(2025, 1, 1)}
        with pytest.raises(StatementError, match="naive datetime"):
            await _insert(connection, "campaigns", row)


# --- SQLite connection settings ------------------------------------------------------------------


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await Store.open(f"sqlite+aiosqlite:///{tmp_path / 'outreach.db'}")
    try:
        yield opened
    finally:
        await opened.close()


async def test_sqlite_store_runs_in_wal_mode_with_foreign_keys_on(sqlite_store: Store) -> None:
    async with sqlite_store.engine.connect() as connection:
        journal_mode = await connection.exec_driver_sql("PRAGMA journal_mode")
        foreign_keys = await connection.exec_driver_sql("PRAGMA foreign_keys")
        assert (journal_mode.scalar(), foreign_keys.scalar()) == ("wal", 1)


async def test_sqlite_connections_wait_for_a_locked_database(sqlite_store: Store) -> None:
    async with sqlite_store.engine.connect() as connection:
        busy_timeout = await connection.exec_driver_sql("PRAGMA busy_timeout")
        assert busy_timeout.scalar() == SQLITE_BUSY_TIMEOUT_MS


async def test_sqlite_transaction_takes_the_write_lock_when_it_begins(
    sqlite_store: Store,
) -> None:
    other = sqlite3.connect(sqlite_store.location, timeout=0, isolation_level=None)
    try:
        async with sqlite_store.engine.begin() as connection:
            await connection.execute(select(campaigns.c.id))
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()


# --- where the store cannot be -------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["sqlite", "sqlite+pysqlite"])
async def test_sqlite_url_without_the_async_driver_gets_it(tmp_path: Path, scheme: str) -> None:
    opened = await Store.open(f"{scheme}:///{tmp_path / 'store.db'}")
    await opened.close()
    assert opened.engine.url.drivername == "sqlite+aiosqlite"


async def test_missing_directories_of_a_sqlite_store_are_created(tmp_path: Path) -> None:
    path = tmp_path / "var" / "lib" / "pbx-outreach" / "store.db"
    opened = await Store.open(f"sqlite+aiosqlite:///{path}")
    await opened.close()
    assert path.is_file()


@pytest.mark.parametrize(
    ("make_path", "reason"),
    [
        (lambda tmp: Path("/proc/pbx-outreach.db"), "No such file or directory"),
        (lambda tmp: tmp / "a-file" / "store.db", "not a directory"),
    ],
    ids=["under-proc", "under-a-file"],
)
async def test_unwritable_sqlite_path_raises_a_store_error_naming_it(
    tmp_path: Path, make_path: Callable[[Path], Path], reason: str
) -> None:
    (tmp_path / "a-file").write_text("not a directory\n")
    path = make_path(tmp_path)
    with pytest.raises(StoreError) as caught:
        await Store.open(f"sqlite+aiosqlite:///{path}")
    message = str(caught.value)
    assert message.startswith(f"cannot create the store at {path}: ")
    assert reason in message
    assert "\n" not in message


async def test_file_that_is_not_a_database_raises_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("these are notes, not a database\n" * 100)
    with pytest.raises(
        StoreError, match=rf"^cannot open the store at {path}: file is not a database"
    ):
        await Store.open(f"sqlite+aiosqlite:///{path}")


@pytest.mark.parametrize(
    "url", ["not a url", "mysql+aiomysql://u@h/db", "sqlite+aiosqlite://"], ids=_key_id
)
async def test_url_that_is_no_store_raises_a_store_error_saying_what_is_expected(url: str) -> None:
    with pytest.raises(StoreError, match=r"sqlite\+aiosqlite:///PATH\.db"):
        await Store.open(url)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_postgres_raises_a_store_error_without_the_password() -> None:
    port = _closed_port()
    url = f"postgresql+asyncpg://outreach:hunter2-secret@127.0.0.1:{port}/outreach"
    with pytest.raises(StoreError) as caught:
        await Store.open(url)
    message = str(caught.value)
    assert message.startswith(
        f"cannot connect to the store at postgresql://outreach@127.0.0.1:{port}/outreach: "
    )
    assert "hunter2" not in message
    assert "\n" not in message
    assert "Traceback" not in message


@pytest.mark.postgres
async def test_missing_postgres_database_raises_a_store_error_naming_it(postgres_url: str) -> None:
    missing = f"pbx_outreach_missing_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_url).set(database=missing)
    with pytest.raises(StoreError, match=rf'/{missing}: database "{missing}" does not exist$'):
        await Store.open(url.render_as_string(hide_password=False))


@pytest.fixture
async def silent_server_port() -> AsyncIterator[int]:
    """A port that accepts connections and never answers: a hung database server."""
    accepted: list[asyncio.StreamWriter] = []

    async def accept(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_silent_postgres_raises_a_store_error_once_the_connect_time_is_up(
    silent_server_port: int,
) -> None:
    url = f"postgresql+asyncpg://outreach@127.0.0.1:{silent_server_port}/outreach"
    with pytest.raises(StoreError, match=r"timed out$"):
        await Store.open(url, connect_timeout_s=0.2)


# --- ping ----------------------------------------------------------------------------------------


async def test_ping_succeeds_on_an_open_store(store: Store) -> None:
    await store.ping()


async def test_ping_raises_a_store_error_when_the_server_stops_answering(
    silent_server_port: int,
) -> None:
    url = f"postgresql+asyncpg://outreach@127.0.0.1:{silent_server_port}/outreach"
    engine = create_async_engine(url)
    hung = Store(engine=engine, dialect="postgresql", location="hung", ping_timeout_s=0.2)
    try:
        with pytest.raises(StoreError, match=r"^cannot reach the store at hung: timed out$"):
            await hung.ping()
    finally:
        await hung.close()


@pytest.mark.postgres
async def test_ping_raises_a_store_error_when_the_database_is_gone(
    postgres_url: str, postgres_admin_url: str
) -> None:
    opened = await Store.open(postgres_url)
    try:
        await opened.ping()
        admin = create_async_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
        try:
            async with admin.connect() as connection:
                name = make_url(postgres_url).database
                await connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.dispose()
        with pytest.raises(StoreError, match="does not exist"):
            await opened.ping()
    finally:
        await opened.close()
