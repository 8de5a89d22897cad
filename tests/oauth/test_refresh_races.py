"""The refresh grant's checks and its race, in process and on both databases, now that its reads
and writes are Core statements (app/oauth/grants/presented.py, refresh_token.py): many
concurrent refreshes of one token rotate it once and converge; a live refresh racing a replayed
old token ends with the grant revoked; each outcome leaves its own audit events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.audit import AuditEvent
from app.db import utcnow
from app.oauth.models import OAuthGrant, RefreshToken
from tests.conftest import Backend
from tests.oauth.flow import refresh
from tests.oauth.support import (
    assert_oauth_error,
    db_execute,
    db_rows,
    full_flow,
    refresh_hash,
    rotated_before_the_grace_window,
)

CONCURRENT = 8


async def grant_of(app: FastAPI, token: str) -> OAuthGrant:
    [(grant_id,)] = await db_rows(
        app,
        select(RefreshToken.grant_id).where(RefreshToken.token_hash == refresh_hash(app, token)),
    )
    [(grant,)] = await db_rows(app, select(OAuthGrant).where(OAuthGrant.id == grant_id))
    return grant  # type: ignore[no-any-return]


REFRESH_KINDS = frozenset(
    {"token.refreshed", "token.refresh_replayed", "token.reuse_detected", "grant.revoked"}
)


async def refresh_events(app: FastAPI, grant: OAuthGrant) -> list[AuditEvent]:
    """The grant's audit events a refresh writes (not its approval or first issue)."""
    rows = await db_rows(app, select(AuditEvent).where(AuditEvent.kind.in_(REFRESH_KINDS)))
    return [e for (e,) in rows if e.detail.get("grant_id") == str(grant.id)]


async def events_of(app: FastAPI, grant: OAuthGrant) -> list[str]:
    return [e.kind for e in await refresh_events(app, grant)]


async def test_concurrent_refreshes_rotate_once_and_all_get_the_successor(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """Exactly one request wins the guarded UPDATE; every other one is a grace replay of the
    winner's pair, not a reuse: the grant stays live, one successor row exists."""
    client_id = public_client["client_id"]
    _, tokens = await full_flow(client, client_id)
    responses = await asyncio.gather(
        *(refresh(client, client_id, tokens["refresh_token"]) for _ in range(CONCURRENT))
    )
    assert [r.status_code for r in responses] == [200] * CONCURRENT, [r.text for r in responses]
    [successor] = {r.json()["refresh_token"] for r in responses}
    assert len({r.json()["access_token"] for r in responses}) == 1
    grant = await grant_of(app, tokens["refresh_token"])
    assert grant.revoked_at is None
    rows = await db_rows(app, select(RefreshToken.id).where(RefreshToken.grant_id == grant.id))
    assert len(rows) == 2
    kinds = await events_of(app, grant)
    assert sorted(kinds) == sorted(
        ["token.refreshed"] + ["token.refresh_replayed"] * (CONCURRENT - 1)
    ), kinds
    assert (await refresh(client, client_id, successor)).is_success


async def test_a_live_refresh_racing_replays_of_a_stale_token_ends_revoked(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """The old token, replayed after the grace window while its successor is being refreshed:
    never a 500, the replays are invalid_grant, and whatever the live refresh got, the grant
    ends revoked, so no chain survives."""
    client_id = public_client["client_id"]
    _, tokens = await full_flow(client, client_id)
    live = (await refresh(client, client_id, tokens["refresh_token"])).json()["refresh_token"]
    await rotated_before_the_grace_window(app, tokens["refresh_token"])
    stale = [refresh(client, client_id, tokens["refresh_token"]) for _ in range(3)]
    responses = await asyncio.gather(refresh(client, client_id, live), *stale)
    for replay in responses[1:]:
        assert_oauth_error(replay, 400, "invalid_grant")
    first = responses[0]
    assert first.status_code in (200, 400), first.text
    grant = await grant_of(app, tokens["refresh_token"])
    assert grant.revoked_at is not None
    assert grant.revoked_reason == "refresh_reuse"
    for token in [live] + ([first.json()["refresh_token"]] if first.is_success else []):
        assert_oauth_error(await refresh(client, client_id, token), 400, "invalid_grant")
    kinds = await events_of(app, grant)
    assert kinds.count("grant.revoked") == 1, kinds
    assert kinds.count("token.reuse_detected") == 3, kinds


async def test_each_outcome_writes_its_audit_events(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """Rotated, replayed in the grace window, reused after it: one event per outcome, and the
    reuse also the grant's revocation, with the presenting client and IP."""
    client_id = public_client["client_id"]
    _, tokens = await full_flow(client, client_id)
    assert (await refresh(client, client_id, tokens["refresh_token"])).is_success
    assert (await refresh(client, client_id, tokens["refresh_token"])).is_success  # replay
    await rotated_before_the_grace_window(app, tokens["refresh_token"])
    reuse = await refresh(client, client_id, tokens["refresh_token"])
    assert_oauth_error(reuse, 400, "invalid_grant")
    grant = await grant_of(app, tokens["refresh_token"])
    mine = await refresh_events(app, grant)
    assert sorted(e.kind for e in mine) == sorted(
        ["token.refreshed", "token.refresh_replayed", "token.reuse_detected", "grant.revoked"]
    )
    for event in mine:
        assert event.user_id == grant.user_id
        assert event.ip is not None
        if event.kind.startswith("token."):
            assert event.detail["client_id"] == client_id
    [revoked] = [e for e in mine if e.kind == "grant.revoked"]
    assert revoked.detail["reason"] == "refresh_reuse"


async def test_a_refresh_for_another_resource_is_invalid_target_and_rotates_nothing(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """RFC 8707 §2.2 at the refresh: a resource other than the grant's is refused, the grant's
    own is accepted, and the refused request did not spend the token."""
    client_id = public_client["client_id"]
    _, tokens = await full_flow(client, client_id)
    other = await refresh(
        client, client_id, tokens["refresh_token"], resource="https://other.example/mcp"
    )
    assert_oauth_error(other, 400, "invalid_target")
    own = await refresh(
        client, client_id, tokens["refresh_token"], resource=app.state.settings.mcp_resource
    )
    assert own.status_code == 200, own.text
    [(rotated_at,)] = await db_rows(
        app,
        select(RefreshToken.rotated_at).where(
            RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"])
        ),
    )
    assert rotated_at is not None
    assert rotated_at.tzinfo is not None  # UTCDateTime on a Core UPDATE as on the ORM's


async def test_a_revoked_grant_refuses_even_a_retry_inside_the_grace_window(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """The grace replay comes after the grant check: once the grant is revoked, the rotated
    token's retry no longer hands out the successor pair it sealed."""
    client_id = public_client["client_id"]
    _, tokens = await full_flow(client, client_id)
    assert (await refresh(client, client_id, tokens["refresh_token"])).is_success
    grant = await grant_of(app, tokens["refresh_token"])
    await db_execute(
        app, update(OAuthGrant).where(OAuthGrant.id == grant.id).values(revoked_at=utcnow())
    )
    retry = await refresh(client, client_id, tokens["refresh_token"])
    assert_oauth_error(retry, 400, "invalid_grant")
    assert "refresh_token" not in retry.text


async def test_refreshes_held_at_the_rotation_lock_converge_when_it_is_released(
    app: FastAPI,
    backend: Backend,
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
) -> None:
    """PostgreSQL, the interleaving forced: both requests have read the token and wait on its
    row lock (held by another transaction) at the guarded UPDATE. When it is released one
    rotates; the other's UPDATE then matches nothing and its re-read (`_live_head`) sees the
    winner's committed rotation, not the row as it first read it: a grace replay of the
    winner's pair, never a reuse."""
    if not backend.is_postgres:
        pytest.skip("row locks and waiting statements are PostgreSQL's")
    client_id = public_client["client_id"]
    _, tokens = await full_flow(client, client_id)
    token_hash = refresh_hash(app, tokens["refresh_token"])
    engine = create_async_engine(backend.url)
    try:
        async with engine.connect() as holder:
            await holder.execute(
                text("SELECT id FROM oauth_refresh_tokens WHERE token_hash = :h FOR UPDATE"),
                {"h": token_hash},
            )
            both = asyncio.gather(
                refresh(client, client_id, tokens["refresh_token"]),
                refresh(client, client_id, tokens["refresh_token"]),
            )
            await waiting_on_locks(engine, 2, both)
            await holder.commit()  # the lock goes: one rotates, the other waits on it
        responses = await both
    finally:
        await engine.dispose()
    assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
    one, two = (r.json() for r in responses)
    for name in ("access_token", "refresh_token", "scope"):
        assert one[name] == two[name], name
    grant = await grant_of(app, tokens["refresh_token"])
    assert grant.revoked_at is None
    assert sorted(await events_of(app, grant)) == ["token.refresh_replayed", "token.refreshed"]


async def waiting_on_locks(engine: AsyncEngine, count: int, work: asyncio.Future[Any]) -> None:
    """Until `count` statements of this database wait on a lock (or `work` ended early)."""
    deadline = time.monotonic() + 20
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    while True:
        async with engine.connect() as conn:
            if (await conn.execute(query)).scalar_one() >= count:
                return
        assert not work.done(), [r.text for r in work.result()]
        assert time.monotonic() < deadline, "the requests never reached the row lock"
        await asyncio.sleep(0.02)
