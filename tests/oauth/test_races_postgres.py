"""Races under PostgreSQL, against a real server process with a real connection pool.

Two concurrent exchanges of one code: exactly one succeeds, and the grant ends revoked, so no
independent chain survives. Two concurrent refreshes of one refresh token: both get the same
successor, and only one successor exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.oauth.models import OAuthGrant, RefreshToken
from tests.conftest import Backend, LiveServer
from tests.helpers import sign_up
from tests.oauth.flow import Authorization, authorize_code, exchange, refresh, register
from tests.oauth.support import db_rows, unverified_claims

ROUNDS = 10


@pytest.fixture
def server(backend: Backend, request: pytest.FixtureRequest) -> LiveServer:
    if not backend.is_postgres:
        pytest.skip("races are meaningful under PostgreSQL; SQLite serialises every writer")
    live: LiveServer = request.getfixturevalue("live_server")
    return live


@pytest.fixture
async def browser_client(server: LiveServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as c:
        await sign_up(c)
        yield c


async def grant_of(app: FastAPI, grant_id: str) -> OAuthGrant:
    [(grant,)] = await db_rows(app, select(OAuthGrant).where(OAuthGrant.id == grant_id))
    return grant  # type: ignore[no-any-return]


async def test_concurrent_code_exchanges_yield_one_token_and_a_revoked_grant(
    app: FastAPI, server: LiveServer, browser_client: httpx.AsyncClient
) -> None:
    registered = await register(browser_client)
    for _ in range(ROUNDS):
        auth = Authorization(registered["client_id"])
        code = await authorize_code(browser_client, auth)
        async with (
            httpx.AsyncClient(base_url=server.url) as one,
            httpx.AsyncClient(base_url=server.url) as two,
        ):
            responses = await asyncio.gather(exchange(one, auth, code), exchange(two, auth, code))
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 400], [r.text for r in responses]
        winner = next(r for r in responses if r.status_code == 200).json()
        loser = next(r for r in responses if r.status_code == 400).json()
        assert loser["error"] == "invalid_grant"
        grant = await grant_of(app, unverified_claims(winner["access_token"])["gid"])
        assert grant.revoked_at is not None
        after = await refresh(browser_client, auth.client_id, winner["refresh_token"])
        assert after.status_code == 400
        assert after.json()["error"] == "invalid_grant"


async def test_concurrent_refreshes_converge_on_one_successor(
    app: FastAPI, server: LiveServer, browser_client: httpx.AsyncClient
) -> None:
    registered = await register(browser_client)
    auth = Authorization(registered["client_id"])
    code = await authorize_code(browser_client, auth)
    tokens: dict[str, Any] = (await exchange(browser_client, auth, code)).json()
    grant_id = unverified_claims(tokens["access_token"])["gid"]
    current = tokens["refresh_token"]
    for round_ in range(ROUNDS):
        async with (
            httpx.AsyncClient(base_url=server.url) as one,
            httpx.AsyncClient(base_url=server.url) as two,
        ):
            responses = await asyncio.gather(
                refresh(one, auth.client_id, current), refresh(two, auth.client_id, current)
            )
        assert [r.status_code for r in responses] == [200, 200], [r.text for r in responses]
        successors = {r.json()["refresh_token"] for r in responses}
        assert len(successors) == 1
        [current] = successors
        rows = await db_rows(app, select(RefreshToken.id).where(RefreshToken.grant_id == grant_id))
        assert len(rows) == round_ + 2  # the first token and one successor per round
    assert (await grant_of(app, grant_id)).revoked_at is None
    assert (await refresh(browser_client, auth.client_id, current)).status_code == 200
