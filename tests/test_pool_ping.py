"""A pooled PostgreSQL connection that died while idle is replaced before use (app/db.py's
idle ping), and one returned a moment ago is used without a ping round trip."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from app.db import PING_IDLE_AFTER, create_engine
from tests.conftest import Backend


async def test_a_connection_killed_while_idle_is_replaced(
    backend: Backend, empty_database: str
) -> None:
    if not backend.is_postgres:
        pytest.skip("SQLite has no server to lose a connection to")
    engine = create_engine(empty_database)
    admin = create_engine(empty_database)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # Returned a moment ago: the same connection, no ping in between.
        async with engine.connect() as conn:
            again = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert again == first
        async with admin.connect() as conn:
            killed = await conn.execute(text(f"SELECT pg_terminate_backend({first})"))
            assert killed.scalar_one() is True
        await asyncio.sleep(PING_IDLE_AFTER + 0.2)
        async with engine.connect() as conn:
            replaced = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert replaced != first
    finally:
        await engine.dispose()
        await admin.dispose()
