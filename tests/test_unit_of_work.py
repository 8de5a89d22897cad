"""app.db.unit_of_work, the session every page and grant runs in: what it commits, what it
rolls back, and that every connection it took goes back to the pool, whether the block wrote,
only read, did nothing, raised or was cancelled."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app import audit
from app.audit import AuditEvent
from app.config import Settings
from app.db import create_engine, create_sessionmaker, unit_of_work
from app.mail.message import Message
from app.mail.outbox import Outbox
from app.mail.transport import LogTransport
from tests.conftest import TEST_SECRET_KEY, Backend


@pytest.fixture
async def engine(backend: Backend) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(backend.url)
    yield engine
    await engine.dispose()


def checked_out(engine: AsyncEngine) -> int:
    return engine.sync_engine.pool.checkedout()  # type: ignore[attr-defined]


async def events(maker: async_sessionmaker[AsyncSession], marker: str) -> int:
    async with maker() as session:
        stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.ip == marker)
        return int((await session.execute(stmt)).scalar_one())


async def test_what_the_block_adds_is_committed(engine: AsyncEngine) -> None:
    maker, marker = create_sessionmaker(engine), f"uow-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(maker) as session:
        audit.record(session, "test.unit_of_work", ip=marker)
    assert checked_out(engine) == 0
    assert await events(maker, marker) == 1


async def test_what_the_block_writes_as_statements_is_committed(engine: AsyncEngine) -> None:
    """The token endpoint's path: its rotation and audit event are Core statements, no objects
    (app/oauth/grants/rotation.py); the transaction they began is what gets committed."""
    maker, marker = create_sessionmaker(engine), f"uow-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(maker) as session:
        await audit.insert(session, "test.unit_of_work", ip=marker)
        assert not session.identity_map
    assert checked_out(engine) == 0
    assert await events(maker, marker) == 1


async def test_mail_queued_for_after_the_commit_is_sent(engine: AsyncEngine) -> None:
    """A session that did nothing but queue a message still commits: the outbox releases its
    mail from the commit's event (app/mail/outbox.py)."""
    box = Outbox(LogTransport(Settings(secret_key=TEST_SECRET_KEY)))
    message = Message(to="a@example.org", subject="Hi", text="Hi\n", html="<p>Hi</p>", kind="t")
    async with unit_of_work(create_sessionmaker(engine)) as session:
        box.send_after_commit(session, message)
    assert box.counts["accepted"] == 1


async def test_a_commit_that_fails_rolls_back_and_gives_back_its_connection(
    engine: AsyncEngine,
) -> None:
    maker, marker = create_sessionmaker(engine), f"uow-{uuid.uuid4().hex[:8]}"
    taken = uuid.uuid4()
    async with unit_of_work(maker) as session:
        session.add(AuditEvent(id=taken, kind="test.unit_of_work", ip="first", detail={}))

    async def clashes() -> None:
        async with unit_of_work(maker) as session:
            audit.record(session, "test.unit_of_work", ip=marker)
            session.add(AuditEvent(id=taken, kind="test.unit_of_work", ip=marker, detail={}))

    with pytest.raises(IntegrityError):  # the primary key, at the commit's flush
        await clashes()
    assert checked_out(engine) == 0
    assert await events(maker, marker) == 0


async def test_a_block_that_raises_writes_nothing(engine: AsyncEngine) -> None:
    maker, marker = create_sessionmaker(engine), f"uow-{uuid.uuid4().hex[:8]}"

    async def fails() -> None:
        async with unit_of_work(maker) as session:
            audit.record(session, "test.unit_of_work", ip=marker)
            await session.flush()  # on the wire, inside the transaction
            raise LookupError

    with pytest.raises(LookupError):
        await fails()
    assert checked_out(engine) == 0
    assert await events(maker, marker) == 0


async def test_a_block_that_only_reads_gives_back_its_connection_and_detaches(
    engine: AsyncEngine,
) -> None:
    maker, marker = create_sessionmaker(engine), f"uow-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(maker) as session:
        audit.record(session, "test.unit_of_work", ip=marker)
    async with unit_of_work(maker) as session:
        row = (await session.execute(select(AuditEvent).where(AuditEvent.ip == marker))).scalar()
        assert checked_out(engine) == 1
    assert checked_out(engine) == 0
    assert row is not None
    assert inspect(row).detached


async def test_a_block_that_uses_nothing_takes_no_connection(engine: AsyncEngine) -> None:
    async with unit_of_work(create_sessionmaker(engine)) as session:
        pass
    assert checked_out(engine) == 0
    assert not session.in_transaction()


async def test_a_change_made_after_an_inner_commit_is_still_written(engine: AsyncEngine) -> None:
    """The block's own commit ends its transaction; an object it still holds and changes
    afterwards is flushed by the unit's commit, as before."""
    maker, marker = create_sessionmaker(engine), f"uow-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(maker) as session:
        event = AuditEvent(kind="test.unit_of_work", ip="placeholder", detail={})
        session.add(event)
        await session.commit()
        assert not session.in_transaction()
        event.ip = marker
    assert checked_out(engine) == 0
    assert await events(maker, marker) == 1


async def test_a_cancelled_block_gives_back_its_connection(engine: AsyncEngine) -> None:
    maker = create_sessionmaker(engine)
    inside = asyncio.Event()

    async def held() -> None:
        async with unit_of_work(maker) as session:
            await session.execute(text("SELECT 1"))
            inside.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(held())
    await inside.wait()
    assert checked_out(engine) == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert checked_out(engine) == 0
