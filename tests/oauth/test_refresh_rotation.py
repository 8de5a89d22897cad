"""/token with refresh_token: rotation, the reuse grace window, reuse detection, scope narrowing."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.audit import AuditEvent
from app.db import utcnow
from app.oauth.models import OAuthGrant, RefreshToken
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import sign_up
from tests.oauth.flow import refresh, register
from tests.oauth.support import (
    assert_oauth_error,
    db_execute,
    db_rows,
    full_flow,
    refresh_hash,
    rotated_before_the_grace_window,
    verify_jwt,
)


async def test_refresh_rotates_the_refresh_token(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    rotated = response.json()
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    assert rotated["scope"] == "mcp mcp:write"
    again = await refresh(client, public_client["client_id"], rotated["refresh_token"])
    assert again.status_code == 200


async def test_reuse_inside_grace_window_returns_the_same_successor(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    first = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    retry = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert first.status_code == 200
    assert retry.status_code == 200
    assert retry.json()["refresh_token"] == first.json()["refresh_token"]
    # The chain stays valid: the successor still refreshes.
    onward = await refresh(client, public_client["client_id"], first.json()["refresh_token"])
    assert onward.status_code == 200


async def test_reuse_after_grace_window_revokes_the_grant(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    first = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    successor = first.json()["refresh_token"]
    await rotated_before_the_grace_window(app, tokens["refresh_token"])
    reuse = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(reuse, 400, "invalid_grant")
    # The whole grant is revoked: the legitimate holder's successor fails too.
    assert_oauth_error(
        await refresh(client, public_client["client_id"], successor), 400, "invalid_grant"
    )


async def test_reuse_with_zero_grace_revokes_the_grant(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, refresh_reuse_grace=0)
    async with running_app(settings) as application, client_for(application, "10.78.0.1") as c:
        await sign_up(c)
        registered = await register(c)
        _, tokens = await full_flow(c, registered["client_id"])
        successor = (await refresh(c, registered["client_id"], tokens["refresh_token"])).json()
        reuse = await refresh(c, registered["client_id"], tokens["refresh_token"])
        assert_oauth_error(reuse, 400, "invalid_grant")
        after = await refresh(c, registered["client_id"], successor["refresh_token"])
        assert_oauth_error(after, 400, "invalid_grant")


async def test_revoked_grant_refuses_refresh(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    revoked = await client.post(
        "/revoke",
        data={"token": tokens["refresh_token"], "client_id": public_client["client_id"]},
    )
    assert revoked.status_code == 200
    response = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(response, 400, "invalid_grant")


async def test_expired_refresh_token_is_invalid_grant(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    await db_execute(
        app,
        update(RefreshToken)
        .where(RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"]))
        .values(expires_at=utcnow() - timedelta(seconds=1)),
    )
    response = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert_oauth_error(response, 400, "invalid_grant")


async def test_refresh_token_of_another_client_is_invalid_grant(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    other = await register(client)
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await refresh(client, other["client_id"], tokens["refresh_token"])
    assert_oauth_error(response, 400, "invalid_grant")
    # ... and the attempt did not burn the token for its rightful client.
    assert (await refresh(client, public_client["client_id"], tokens["refresh_token"])).is_success


async def test_unknown_refresh_token_is_invalid_grant(
    client: httpx.AsyncClient, public_client: dict[str, Any]
) -> None:
    response = await refresh(client, public_client["client_id"], "gh_rt_made_up")
    assert_oauth_error(response, 400, "invalid_grant")


async def test_narrower_scope_on_refresh(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await refresh(
        client, public_client["client_id"], tokens["refresh_token"], scope="mcp"
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "mcp"
    assert (await verify_jwt(client, response.json()["access_token"])).claims["scope"] == "mcp"


async def test_narrowing_keeps_the_refresh_tokens_scope(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    # RFC 6749 §6: "If a new refresh token is issued, the refresh token scope MUST be identical
    # to that of the refresh token included by the client in the request."
    _, tokens = await full_flow(client, public_client["client_id"])
    narrowed = await refresh(
        client, public_client["client_id"], tokens["refresh_token"], scope="mcp"
    )
    later = await refresh(client, public_client["client_id"], narrowed.json()["refresh_token"])
    assert later.status_code == 200
    assert later.json()["scope"] == "mcp mcp:write"


async def test_wider_scope_on_refresh_is_invalid_scope(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"], ticked=[])
    response = await refresh(
        client, public_client["client_id"], tokens["refresh_token"], scope="mcp mcp:write"
    )
    assert_oauth_error(response, 400, "invalid_scope")


async def test_refresh_stores_one_successor_row(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    for _ in range(3):
        assert (
            await refresh(client, public_client["client_id"], tokens["refresh_token"])
        ).is_success
    [(grant_id,)] = await db_rows(
        app,
        select(RefreshToken.grant_id).where(
            RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"])
        ),
    )
    rows = await db_rows(app, select(RefreshToken.id).where(RefreshToken.grant_id == grant_id))
    assert len(rows) == 2


async def test_default_grace_window_outlasts_refresh_storms(app: FastAPI) -> None:
    # Parallel refreshes 33-76 s apart are reported from production; the default covers them.
    assert app.state.settings.refresh_reuse_grace >= 120


async def test_a_retry_late_in_the_grace_window_gets_the_same_pair(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    first = (await refresh(client, public_client["client_id"], tokens["refresh_token"])).json()
    # 110 s later (inside the 120 s default): every retry gets exactly what the first got.
    await db_execute(
        app,
        update(RefreshToken)
        .where(RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"]))
        .values(rotated_at=utcnow() - timedelta(seconds=110)),
    )
    for _ in range(3):
        retry = await refresh(client, public_client["client_id"], tokens["refresh_token"])
        assert retry.status_code == 200, retry.text
        body = retry.json()
        assert body["refresh_token"] == first["refresh_token"]
        assert body["access_token"] == first["access_token"]
        assert body["scope"] == first["scope"]
        assert 0 < body["expires_in"] <= first["expires_in"]
    assert (await refresh(client, public_client["client_id"], first["refresh_token"])).is_success


async def test_a_retry_follows_the_chain_to_its_live_head(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    first = (await refresh(client, public_client["client_id"], tokens["refresh_token"])).json()
    second = (await refresh(client, public_client["client_id"], first["refresh_token"])).json()
    late = (await refresh(client, public_client["client_id"], tokens["refresh_token"])).json()
    assert late["refresh_token"] == second["refresh_token"]
    assert late["access_token"] == second["access_token"]


async def test_a_retry_with_a_narrower_scope_gets_its_own_access_token(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    first = (await refresh(client, public_client["client_id"], tokens["refresh_token"])).json()
    narrow = await refresh(client, public_client["client_id"], tokens["refresh_token"], scope="mcp")
    assert narrow.json()["refresh_token"] == first["refresh_token"]
    assert narrow.json()["access_token"] != first["access_token"]
    assert narrow.json()["scope"] == "mcp"


async def test_the_successor_pair_is_stored_sealed_never_in_the_clear(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    first = (await refresh(client, public_client["client_id"], tokens["refresh_token"])).json()
    sealed = await db_rows(
        app,
        select(RefreshToken.successor_sealed).where(
            RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"])
        ),
    )
    blob = sealed[0][0]
    assert blob
    assert first["refresh_token"].encode() not in blob
    assert first["access_token"].encode()[:40] not in blob


async def test_a_rotation_writes_the_chain_and_its_audit_event(
    app: FastAPI, client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    """The rotated row names its successor; the successor holds the new token's hash, the
    grant's scope and a full lifetime; one `token.refreshed` event names client and grant."""
    _, tokens = await full_flow(client, public_client["client_id"])
    before = utcnow()
    response = await refresh(client, public_client["client_id"], tokens["refresh_token"])
    assert response.status_code == 200
    new = response.json()["refresh_token"]
    [old] = await db_rows(
        app,
        select(RefreshToken).where(
            RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"])
        ),
    )
    [successor] = await db_rows(
        app, select(RefreshToken).where(RefreshToken.token_hash == refresh_hash(app, new))
    )
    old, successor = old[0], successor[0]
    assert old.rotated_at is not None
    assert before <= old.rotated_at <= utcnow()
    assert old.successor_id == successor.id
    assert (successor.grant_id, successor.client_pk) == (old.grant_id, old.client_pk)
    assert successor.scopes == "mcp mcp:write"
    assert (successor.rotated_at, successor.successor_id, successor.successor_sealed) == (
        None,
        None,
        None,
    )
    lifetime = app.state.settings.refresh_token_ttl
    assert before + timedelta(seconds=lifetime - 5) <= successor.expires_at
    assert successor.expires_at <= utcnow() + timedelta(seconds=lifetime)
    assert before <= successor.created_at <= utcnow()
    events = [
        event
        for (event,) in await db_rows(app, select(AuditEvent).where(AuditEvent.at >= before))
        if event.detail.get("grant_id") == str(old.grant_id)
    ]
    assert [(e.kind, e.detail) for e in events] == [
        (
            "token.refreshed",
            {"client_id": public_client["client_id"], "grant_id": str(old.grant_id)},
        )
    ]
    assert events[0].user_id is not None
    assert events[0].at <= utcnow()


@pytest.mark.parametrize(("ago", "noted"), [(timedelta(minutes=10), True), (timedelta(0), False)])
async def test_a_refresh_notes_the_grants_use_at_a_coarse_resolution(
    app: FastAPI,
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
    ago: timedelta,
    noted: bool,
) -> None:
    """The grant's last use moves on a refresh only when the one on record is over five minutes
    old (app/oauth/issuance.py LAST_USED_RESOLUTION): a busy client does not write every time."""
    _, tokens = await full_flow(client, public_client["client_id"])
    [(grant_id,)] = await db_rows(
        app,
        select(RefreshToken.grant_id).where(
            RefreshToken.token_hash == refresh_hash(app, tokens["refresh_token"])
        ),
    )
    recorded = utcnow() - ago
    await db_execute(
        app, update(OAuthGrant).where(OAuthGrant.id == grant_id).values(last_used_at=recorded)
    )
    before = utcnow()
    assert (await refresh(client, public_client["client_id"], tokens["refresh_token"])).is_success
    [(last_used,)] = await db_rows(
        app, select(OAuthGrant.last_used_at).where(OAuthGrant.id == grant_id)
    )
    if noted:
        assert before <= last_used <= utcnow()
    else:
        assert last_used == recorded
