"""RFC 7591 dynamic client registration: validation, secrets, bounds, rate limit, expiry."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.db import utcnow
from app.housekeeping import purge
from app.oauth.models import OAuthClient
from app.oauth.signing_keys import publish_window
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.oauth.flow import Authorization, register
from tests.oauth.support import assert_oauth_error, db_execute, db_rows, full_flow


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "client_name": "Registered",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        **overrides,
    }


async def stored_client(app: FastAPI, client_id: str) -> OAuthClient:
    rows = await db_rows(app, select(OAuthClient).where(OAuthClient.client_id == client_id))
    assert len(rows) == 1
    return rows[0][0]  # type: ignore[no-any-return]


async def test_public_client_gets_an_id_and_no_secret(client: httpx.AsyncClient) -> None:
    response = await client.post("/register", json=body())
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"
    registered = response.json()
    assert registered["client_id"]
    assert registered["token_endpoint_auth_method"] == "none"
    assert registered["redirect_uris"] == ["http://127.0.0.1:33418/callback"]
    assert registered["grant_types"] == ["authorization_code", "refresh_token"]
    assert isinstance(registered["client_id_issued_at"], int)
    assert "client_secret" not in registered


async def test_confidential_client_secret_is_returned_once_and_stored_hashed(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    registered = await register(client, token_endpoint_auth_method="client_secret_basic")
    secret = registered["client_secret"]
    assert len(secret) >= 43
    assert registered["client_secret_expires_at"] == 0
    row = await stored_client(app, registered["client_id"])
    assert row.client_secret_hash is not None
    assert secret not in row.client_secret_hash
    assert secret not in json.dumps(row.client_metadata)
    assert len(row.client_secret_hash) == 64


@pytest.mark.parametrize(
    "uri",
    [
        "https://app.example.com/oauth/callback",
        "cursor://anysphere.cursor-retrieval/oauth/user-gatehouse/callback",
        "vscode://vscode.github-authentication/did-authenticate",
        "http://127.0.0.1/callback",
        "http://[::1]:8080/callback",
        "http://localhost:6274/oauth/callback",
    ],
)
async def test_redirect_uri_accepted(client: httpx.AsyncClient, uri: str) -> None:
    response = await client.post("/register", json=body(redirect_uris=[uri]))
    assert response.status_code == 201, response.text
    assert response.json()["redirect_uris"] == [uri]


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "http://example.com/callback",
        "http://127.0.0.1.example.com/callback",
        "https://app.example.com/callback#fragment",
        "https://user@app.example.com/callback",
        "/relative/callback",
    ],
)
async def test_redirect_uri_refused(client: httpx.AsyncClient, uri: str) -> None:
    response = await client.post("/register", json=body(redirect_uris=[uri]))
    error = assert_oauth_error(response, 400, "invalid_redirect_uri")
    assert error["error_description"]


async def test_missing_redirect_uris_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/register", json=body(redirect_uris=[]))
    assert_oauth_error(response, 400, "invalid_redirect_uri")


async def test_twenty_redirect_uris_refused(client: httpx.AsyncClient) -> None:
    uris = [f"https://app.example.com/cb/{i}" for i in range(20)]
    response = await client.post("/register", json=body(redirect_uris=uris))
    assert_oauth_error(response, 400, "invalid_redirect_uri")


async def test_three_megabyte_body_refused(app: FastAPI, client: httpx.AsyncClient) -> None:
    before = len(await db_rows(app, select(OAuthClient.id)))
    huge = json.dumps(body(client_name="x" * (3 * 1024 * 1024)))
    response = await client.post(
        "/register", content=huge, headers={"Content-Type": "application/json"}
    )
    assert response.status_code in (400, 413)
    assert response.json()["error"] in ("invalid_request", "invalid_client_metadata")
    assert len(await db_rows(app, select(OAuthClient.id))) == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("token_endpoint_auth_method", "private_key_jwt"),
        ("grant_types", ["implicit"]),
        ("grant_types", ["client_credentials"]),
        ("response_types", ["token"]),
        ("client_name", "n" * 201),
        ("logo_uri", "javascript:alert(1)"),
    ],
)
async def test_invalid_metadata_refused(client: httpx.AsyncClient, field: str, value: Any) -> None:
    response = await client.post("/register", json=body(**{field: value}))
    assert_oauth_error(response, 400, "invalid_client_metadata")


async def test_body_that_is_not_a_json_object_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/register", json=["not", "an", "object"])
    assert_oauth_error(response, 400, "invalid_client_metadata")


async def test_registration_is_rate_limited_per_ip(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, registration_limit_ip="2 per hour")
    async with running_app(settings) as application:
        async with client_for(application, "10.1.2.3") as c:
            for _ in range(2):
                assert (await c.post("/register", json=body())).status_code == 201
            third = await c.post("/register", json=body())
            assert third.status_code == 429
            assert int(third.headers["retry-after"]) > 0
            assert third.json()["error"] == "temporarily_unavailable"
        async with client_for(application, "10.1.2.4") as other:
            assert (await other.post("/register", json=body())).status_code == 201


async def test_registration_never_used_is_purged(
    app: FastAPI, client: httpx.AsyncClient, user: str
) -> None:
    settings = app.state.settings
    stale = await register(client)
    used = await register(client)
    await full_flow(client, used["client_id"])
    long_ago = utcnow() - timedelta(seconds=settings.registration_unused_ttl + 60)
    await db_execute(
        app,
        update(OAuthClient)
        .where(OAuthClient.client_id.in_([stale["client_id"], used["client_id"]]))
        .values(created_at=long_ago),
    )
    async with app.state.sessionmaker() as session, session.begin():
        counts = await purge(session, settings, publish_window(settings.access_token_ttl))
    assert counts["stale_clients"] >= 1
    remaining = await db_rows(
        app,
        select(OAuthClient.client_id).where(
            OAuthClient.client_id.in_([stale["client_id"], used["client_id"]])
        ),
    )
    assert [r[0] for r in remaining] == [used["client_id"]]
    page = await client.get(Authorization(stale["client_id"]).url())
    assert page.status_code == 400
    assert "location" not in page.headers
