"""One Alembic history, valid on SQLite and PostgreSQL, that matches the models."""

from __future__ import annotations

import asyncio
import uuid
import warnings
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, insert, inspect
from sqlalchemy.exc import IntegrityError

import app.models
from app.auth.models import User
from app.cli import alembic_config
from app.db import create_engine, utcnow

ACCOUNT_TABLES = {"users", "sessions", "audit_events"}


def migrate(url: str, direction: str, revision: str) -> None:
    getattr(command, direction)(alembic_config(url), revision)


async def run_sync(url: str, work: Any) -> Any:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(work)
    finally:
        await engine.dispose()


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_upgrade_downgrade_and_upgrade_again(empty_database: str) -> None:
    await asyncio.to_thread(migrate, empty_database, "upgrade", "head")
    assert ACCOUNT_TABLES | {"alembic_version"} <= await run_sync(empty_database, table_names)

    await asyncio.to_thread(migrate, empty_database, "downgrade", "base")
    assert await run_sync(empty_database, table_names) == {"alembic_version"}

    await asyncio.to_thread(migrate, empty_database, "upgrade", "head")
    assert ACCOUNT_TABLES <= await run_sync(empty_database, table_names)


def differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    with warnings.catch_warnings():
        # SQLite cannot reflect expression indexes (lower(email)); Alembic says so and skips them.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        return list(compare_metadata(context, app.models.Base.metadata))


async def test_the_models_match_the_migrations(empty_database: str) -> None:
    await asyncio.to_thread(migrate, empty_database, "upgrade", "head")
    assert await run_sync(empty_database, differences) == []


def create_all(conn: Connection) -> None:
    app.models.Base.metadata.create_all(conn)
    conn.commit()


def insert_users(*emails: str) -> Any:
    def work(conn: Connection) -> None:
        now = utcnow()
        rows = [{"id": uuid.uuid4(), "email": e, "name": "", "password_hash": "x"} for e in emails]
        conn.execute(insert(User).values(created_at=now, updated_at=now), rows)
        conn.commit()

    return work


@pytest.mark.parametrize("build", ["migrations", "models"])
async def test_emails_are_unique_case_insensitively_and_only_that(
    empty_database: str, build: str
) -> None:
    if build == "migrations":
        await asyncio.to_thread(migrate, empty_database, "upgrade", "head")
    else:
        await run_sync(empty_database, create_all)
    await run_sync(empty_database, insert_users("ada@example.com", "bob@example.com"))
    with pytest.raises(IntegrityError):
        await run_sync(empty_database, insert_users("ADA@example.com"))
