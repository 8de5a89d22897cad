"""/health says the process is up; /ready says the database answers."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from tests.conftest import (
    POSTGRES_URL,
    Backend,
    _admin_execute,
    _upgrade,
    client_for,
    make_settings,
    missing,
    running_app,
)


async def test_health_is_200(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_is_200_when_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


async def test_ready_is_503_when_the_database_goes_away(tmp_path: Path) -> None:
    # Every role reads the database while starting (signing keys, the revocation feed), so an app
    # cannot start on an unreachable one; the database going away later is what /ready reports.
    name = f"gatehouse_ready_{uuid.uuid4().hex[:10]}"
    try:
        await _admin_execute(f'CREATE DATABASE "{name}"')
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means "not available"
        missing("PostgreSQL", f"start it at {POSTGRES_URL} ({type(exc).__name__}: {exc})")
    url = str(make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name))
    try:
        await asyncio.to_thread(_upgrade, url)
        settings = make_settings(Backend("postgresql", url), tmp_path)
        async with running_app(settings) as app, client_for(app) as client:
            assert (await client.get("/ready")).status_code == 200
            await _admin_execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            response = await client.get("/ready")
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable", "database": "unreachable"}
            assert (await client.get("/health")).status_code == 200
    finally:
        await _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
