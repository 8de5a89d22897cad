"""The admin CLI's OAuth commands, run as processes against the test database."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select, update

from app.db import utcnow
from app.kit.security import hash_token
from app.oauth.models import AuthorizationCode
from tests.conftest import Backend
from tests.oauth.flow import Authorization, authorize_code, refresh, register
from tests.oauth.support import assert_oauth_error, db_execute, db_rows, full_flow, verify_jwt
from tests.oauth.test_signing_keys import gatehouse


async def test_clients_list_shows_registered_clients(
    backend: Backend, tmp_path: Path, client: httpx.AsyncClient
) -> None:
    name = f"Listed {uuid.uuid4().hex[:8]}"
    registered = await register(client, client_name=name)
    lines = gatehouse(backend, tmp_path, "clients", "list").stdout.splitlines()
    line = next(line for line in lines if line.startswith(registered["client_id"]))
    assert name in line
    assert "registered" in line
    assert "active" in line


async def test_clients_revoke_blocks_authorize_and_refresh(
    backend: Backend, tmp_path: Path, client: httpx.AsyncClient, user: str
) -> None:
    registered = await register(client)
    _, tokens = await full_flow(client, registered["client_id"])
    gatehouse(backend, tmp_path, "clients", "revoke", registered["client_id"])
    page = await client.get(Authorization(registered["client_id"]).url())
    assert page.status_code == 400
    assert "location" not in page.headers
    after = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_oauth_error(after, 401, "invalid_client")
    listed = gatehouse(backend, tmp_path, "clients", "list").stdout
    line = next(line for line in listed.splitlines() if line.startswith(registered["client_id"]))
    assert "revoked" in line


async def test_grants_list_for_a_user(
    backend: Backend, tmp_path: Path, client: httpx.AsyncClient, fresh_user: str
) -> None:
    registered = await register(client, client_name="Granted App")
    _, tokens = await full_flow(client, registered["client_id"], ticked=[])
    grant_id = (await verify_jwt(client, tokens["access_token"])).claims["gid"]
    lines = gatehouse(backend, tmp_path, "grants", "list", "--user", fresh_user).stdout
    [line] = lines.splitlines()
    assert line.startswith(grant_id)
    assert fresh_user in line
    assert "Granted App" in line
    assert "mcp" in line
    assert "active" in line


async def test_grants_revoke_makes_refresh_fail(
    backend: Backend, tmp_path: Path, client: httpx.AsyncClient, user: str
) -> None:
    registered = await register(client)
    _, tokens = await full_flow(client, registered["client_id"])
    grant_id = (await verify_jwt(client, tokens["access_token"])).claims["gid"]
    gatehouse(backend, tmp_path, "grants", "revoke", grant_id)
    after = await refresh(client, registered["client_id"], tokens["refresh_token"])
    assert_oauth_error(after, 400, "invalid_grant")


async def test_purge_deletes_an_expired_code(
    *,
    app: FastAPI,
    backend: Backend,
    tmp_path: Path,
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
) -> None:
    code = await authorize_code(client, Authorization(public_client["client_id"]))
    code_hash = hash_token(app.state.settings.secret_key_bytes, code, purpose="code")
    live = await authorize_code(client, Authorization(public_client["client_id"]))
    live_hash = hash_token(app.state.settings.secret_key_bytes, live, purpose="code")
    await db_execute(
        app,
        update(AuthorizationCode)
        .where(AuthorizationCode.code_hash == code_hash)
        .values(created_at=utcnow() - timedelta(days=3), expires_at=utcnow() - timedelta(days=2)),
    )
    output = gatehouse(backend, tmp_path, "purge").stdout
    assert "codes: " in output
    remaining = await db_rows(
        app,
        select(AuthorizationCode.code_hash).where(
            AuthorizationCode.code_hash.in_([code_hash, live_hash])
        ),
    )
    assert [row[0] for row in remaining] == [live_hash]
