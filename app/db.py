"""Database: declarative Base, engine, sessions. SQLite and PostgreSQL through the same models."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, cast

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData, Table, event
from sqlalchemy.engine import CursorResult, Dialect, Result, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.types import TypeDecorator
from typing_extensions import override

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    @override
    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime}


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


# Bounded waits, so an outage is a prompt 503 (app/errors.py) rather than a request that hangs:
# a connection from the pool, a new connection to the server, one statement.
POOL_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0
STATEMENT_TIMEOUT = 15.0


def create_engine(database_url: str) -> AsyncEngine:
    # hide_parameters: an error's message never carries the values bound to its statement (a
    # password hash, a token hash, what a user typed), whoever logs it.
    if database_url.startswith("sqlite"):
        _ensure_sqlite_directory(database_url)
        engine = create_async_engine(
            database_url, connect_args={"timeout": 30}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        database_url,
        # Connections kept open, and made beyond them for a burst (closed when they come
        # back to a full pool). 20 kept: a worker serving a couple of dozen requests at once
        # used to open and close a connection for every few dozen token grants (a
        # connection costs a TLS probe, authentication and the statements' preparation:
        # about 5% of a refresh grant's CPU under 16 concurrent clients, bench/token_bench.py).
        # The most a worker opens stays 30. Last in, first out: at a modest rate the same few
        # connections serve every request, rather than each of the 20 in turn (each then idle
        # long enough to be pinged first, below).
        pool_size=20,
        max_overflow=10,
        pool_use_lifo=True,
        pool_timeout=POOL_TIMEOUT,
        hide_parameters=True,
        connect_args={
            "timeout": CONNECT_TIMEOUT,  # asyncpg: establishing a connection
            "command_timeout": STATEMENT_TIMEOUT,  # asyncpg: client-side, per statement
            # The server's own limit too, so a query abandoned by the client does not run on.
            "server_settings": {"statement_timeout": str(int(STATEMENT_TIMEOUT * 1000))},
        },
    )
    event.listen(engine.sync_engine, "checkin", _note_return)
    event.listen(engine.sync_engine, "checkout", _PingIfIdle(engine.sync_engine.dialect))
    return engine


# A connection that sat idle may have outlived its server (a restart, a failover, a proxy's idle
# timeout): it is pinged before use, and a dead one replaced, as `pool_pre_ping` would. One that
# went back to the pool a moment ago is used as it is: pinging it too cost a round trip and a
# tenth of a token grant's CPU (bench/token_bench.py). If the server died in that moment, the
# request fails as during any outage (503 + Retry-After, app/failures.py), the pool drops every
# connection it holds, and the next request connects afresh.
PING_IDLE_AFTER = 2.0  # seconds


def _note_return(_dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
    record.info["returned_at"] = time.monotonic()


class _PingIfIdle:
    """The checkout hook: ping a connection only when it has been idle."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect

    def __call__(
        self, dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, _proxy: object
    ) -> None:
        returned = record.info.get("returned_at")
        # A connection made just now (record.info starts empty on each connect) needs no ping.
        if returned is None or time.monotonic() - returned < PING_IDLE_AFTER:
            return
        # As pool_pre_ping does: InvalidatePoolError makes the pool discard this connection and
        # every other one made before now, and check out a fresh one (up to three times).
        try:
            alive = self.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise InvalidatePoolError("the pooled connection is gone") from exc
        if not alive:
            raise InvalidatePoolError("the pooled connection is gone")


def _ensure_sqlite_directory(database_url: str) -> None:
    database = make_url(database_url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def table_of(entity: type[Base]) -> Table:
    """An entity's table, for Core statements on a hot path: executed as they are, without the
    ORM's bulk-statement handling or the unit of work (column defaults still apply)."""
    return cast("Table", entity.__table__)


def rows_affected(result: Result[Any]) -> int:
    """How many rows an UPDATE, DELETE or INSERT changed (executing one gives a CursorResult).

    A driver that cannot tell reports -1; that counts as none, so a guarded write that decides a
    race (app/oauth/grants/rotation.py) fails closed."""
    return max(int(cast("CursorResult[Any]", result).rowcount or 0), 0)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def unit_of_work(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """A session committed when the block ends, rolled back if it raises.

    A session the block never used (a page that found no cookie to look up) is left as it is:
    its commit and close would do nothing, yet cost a trip through SQLAlchemy's greenlet each
    and a task for the close (about a fifth of a `GET /sign-in`, docs/PERFORMANCE.md)."""
    session = sessionmaker()
    try:
        yield session
        if _touched(session):
            await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        if _touched(session):
            # What `async with` would do: SQLAlchemy runs the close to its end even if this
            # task is cancelled meanwhile, so the connection is back in the pool on return.
            await session.__aexit__(None, None, None)


def _touched(session: AsyncSession) -> bool:
    """Whether a commit or close has anything to finish: a transaction (every statement, add
    and delete begins one), objects the session holds (a flush of changes, detaching), or
    work waiting on its commit events (app/mail/outbox.py keeps its mail in `info`)."""
    sync = session.sync_session
    return (
        sync.in_transaction()
        or bool(sync.identity_map)
        or bool(sync.new or sync.deleted)
        or bool(sync.info)
    )


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request: committed when the handler returns, rolled back if it raises."""
    async with unit_of_work(request.app.state.sessionmaker) as session:
        yield session


# scope="function": commit before the response is sent, so a client never sees a redirect or a
# token whose row is not yet durable, and a failed commit becomes a 500 rather than a lie.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
