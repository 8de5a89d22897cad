"""`GET /api/me`: a deployer's own route protected by `McpAuth`, with /mcp's very checks and
challenges (RFC 6750 §3, RFC 9728 §5.1), mounted wherever /mcp is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from app.oauth.models import OAuthClient, OAuthGrant
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.mcp.support import (
    ALL_SCOPES,
    Grant,
    an_hour_ago,
    challenge,
    metadata_url,
    obtain_grant,
    post_mcp,
    resign,
)
from tests.oauth.support import db_rows

PRM = metadata_url("http://127.0.0.1:8000")


@pytest.fixture
async def grant(client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(client, write=False)


async def me(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.get("/api/me", headers=headers)


async def whoami_at_mcp(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    return await post_mcp(client, "tools/call", {"name": "whoami", "arguments": {}}, token=token)


async def test_a_valid_token_gets_the_callers_identity_and_never_the_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    response = await me(client, grant.access_token)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    [(grant_id, user_id)] = await db_rows(
        app,
        select(OAuthGrant.id, OAuthGrant.user_id)
        .join(OAuthClient, OAuthClient.id == OAuthGrant.client_pk)
        .where(OAuthClient.client_id == grant.client_id),
    )
    assert response.json() == {
        "user_id": str(user_id),
        "email": grant.email,
        "name": "",
        "client_id": grant.client_id,
        "scopes": ["mcp"],
        "grant_id": str(grant_id),
    }
    assert grant.access_token not in response.text


async def test_no_token_gets_the_same_challenge_as_mcp(client: httpx.AsyncClient) -> None:
    response = await me(client, None)
    at_mcp = await whoami_at_mcp(client, None)
    assert response.status_code == at_mcp.status_code == 401
    assert response.headers["www-authenticate"] == at_mcp.headers["www-authenticate"]
    assert challenge(response) == {"resource_metadata": PRM, "scope": ALL_SCOPES}
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("claims", "description"),
    [
        ({"iat": an_hour_ago() - 60, "exp": an_hour_ago()}, "the access token has expired"),
        ({"aud": "https://other.example/mcp"}, "the access token's aud claim is not accepted"),
    ],
    ids=["expired", "wrong-audience"],
)
async def test_a_bad_token_gets_the_same_invalid_token_challenge_as_mcp(
    app: FastAPI,
    client: httpx.AsyncClient,
    grant: Grant,
    claims: dict[str, int | str],
    description: str,
) -> None:
    bad = await resign(app, grant.access_token, claims=claims)
    response = await me(client, bad)
    at_mcp = await whoami_at_mcp(client, bad)
    assert response.status_code == at_mcp.status_code == 401
    assert response.headers["www-authenticate"] == at_mcp.headers["www-authenticate"]
    assert challenge(response) == {
        "error": "invalid_token",
        "error_description": description,
        "resource_metadata": PRM,
        "scope": ALL_SCOPES,
    }


async def test_a_revoked_grant_is_refused(client: httpx.AsyncClient, grant: Grant) -> None:
    assert (await me(client, grant.access_token)).status_code == 200
    revoked = await client.post(
        "/revoke", data={"token": grant.refresh_token, "client_id": grant.client_id}
    )
    assert revoked.status_code == 200
    # The revocation feed is polled: refused once it has been seen (bounded by 5 s).
    for _ in range(30):
        response = await me(client, grant.access_token)
        if response.status_code != 200:
            break
        await asyncio.sleep(0.2)
    assert response.status_code == 401
    assert challenge(response)["error_description"] == (
        "the grant was revoked or the user disabled"
    )


async def test_api_me_is_mounted_in_role_mcp_and_not_in_role_auth(
    backend: Backend, tmp_path: Path
) -> None:
    async with running_app(make_settings(backend, tmp_path, gatehouse_role="mcp")) as mcp_app:
        async with client_for(mcp_app) as client:
            response = await me(client, None)
            assert response.status_code == 401
            assert challenge(response) == {"resource_metadata": PRM, "scope": ALL_SCOPES}
    async with running_app(make_settings(backend, tmp_path, gatehouse_role="auth")) as auth_app:
        async with client_for(auth_app) as client:
            assert (await me(client, None)).status_code == 404
