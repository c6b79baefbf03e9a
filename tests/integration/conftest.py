"""Fixtures shared by the integration tests."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from dialer.store import Store
from tests.support import DAEMON_TOKEN

# --- the store: a fresh one per test, on SQLite and on PostgreSQL ---------------------------

POSTGRES_URL_VARIABLE = "PBX_OUTREACH_TEST_PG_URL"
DEFAULT_POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
POSTGRES_START_HINT = (
    "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    f" (or point {POSTGRES_URL_VARIABLE} at a server)"
)


def _postgres_admin_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)


@pytest.fixture
def postgres_admin_url() -> str:
    """The PostgreSQL database the tests connect to in order to create their own databases."""
    return _postgres_admin_url()


@contextlib.asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """Create a uniquely named database, yield its url, and drop it (also with sessions open)."""
    admin_url = make_url(_postgres_admin_url())
    name = f"pbx_outreach_test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(
        admin_url, isolation_level="AUTOCOMMIT", connect_args={"timeout": 5}
    )
    try:
        problem = None
        try:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        except (OSError, TimeoutError, SQLAlchemyError) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            shown = admin_url.render_as_string(hide_password=True)
            message = f"PostgreSQL is needed at {shown} and is not usable ({problem})"
            pytest.fail(f"{message}; {POSTGRES_START_HINT}", pytrace=False)
        try:
            yield admin_url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as connection:
                await connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """The url of a fresh, empty PostgreSQL database, dropped after the test."""
    async with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
async def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The url of a store not yet created: a SQLite file in tmp_path, or a fresh PG database."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'store' / 'outreach.db'}"
    else:
        async with fresh_postgres_database() as url:
            yield url


@pytest.fixture
async def postgres_store(postgres_url: str) -> AsyncIterator[Store]:
    """An open store on a fresh PostgreSQL database: what several workers share."""
    opened = await Store.open(postgres_url)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An open store, migrated to head, on each backend."""
    opened = await Store.open(store_url)
    try:
        yield opened
    finally:
        await opened.close()


# --- HTTP to a daemon started by a test (`tests.support.DaemonProcess`) ----------------------


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session sending the daemon's bearer token (`write_daemon_config`'s)."""
    async with aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=10),
        headers={"Authorization": f"Bearer {DAEMON_TOKEN}"},
    ) as session:
        yield session
