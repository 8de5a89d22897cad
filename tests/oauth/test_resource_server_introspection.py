"""A protected resource (the split-out `mcp` role) asks /introspect whether tokens are active.

RFC 7662 §2.1: "the protected resource ... authenticate[s]" to the introspection endpoint; §4:
"the authorization server MUST determine whether or not the token can be used at the protected
resource making the introspection call". An ordinary client learns only about its own tokens; a
resource server, registered by an administrator with `gatehouse clients add-resource-server`,
learns about every access token minted for this server's MCP resource, whoever the client.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, update

from app.auth.models import User
from app.db import utcnow
from app.housekeeping import purge
from app.kit.security import hash_token
from app.oauth.models import OAuthClient
from app.oauth.signing_keys import publish_window
from tests.conftest import TEST_SECRET_KEY, Backend
from tests.helpers import sign_up
from tests.oauth.flow import Authorization, register
from tests.oauth.support import RESOURCE, assert_oauth_error, db_execute, db_rows, full_flow
from tests.oauth.test_introspection_rfc7662 import introspect
from tests.oauth.test_signing_keys import gatehouse
from tests.oauth.test_token_endpoint import basic


def add_resource_server(backend: Backend, tmp: Path, *args: str) -> dict[str, str]:
    """Run the CLI; its standard output is exactly the two variables for the `mcp` role."""
    result = gatehouse(backend, tmp, "clients", "add-resource-server", *args)
    lines = result.stdout.splitlines()
    assert [line.split("=", 1)[0] for line in lines] == [
        "AUTH_INTROSPECTION_CLIENT_ID",
        "AUTH_INTROSPECTION_CLIENT_SECRET",
    ], result.stdout
    assert "shown only once" in result.stderr
    client_id, secret = (line.split("=", 1)[1] for line in lines)
    return {"client_id": client_id, "client_secret": secret}


@pytest.fixture(scope="module")
def resource_server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return add_resource_server(backend, tmp_path_factory.mktemp("rs"), "--name", "MCP replicas")


async def test_the_cli_stores_only_a_hash_of_the_secret(
    app: FastAPI, backend: Backend, tmp_path: Path, resource_server: dict[str, str]
) -> None:
    [(row,)] = await db_rows(
        app, select(OAuthClient).where(OAuthClient.client_id == resource_server["client_id"])
    )
    assert row.kind == "resource"
    assert row.client_name == "MCP replicas"
    assert row.client_secret_hash == hash_token(
        TEST_SECRET_KEY.encode(), resource_server["client_secret"], purpose="client-secret"
    )
    assert resource_server["client_secret"] not in str(row.client_metadata)
    # It can be used for nothing but introspection.
    assert row.redirect_uris == []
    assert row.grant_types == []
    assert row.token_endpoint_auth_method == "client_secret_basic"
    listed = gatehouse(backend, tmp_path, "clients", "list").stdout
    line = next(line for line in listed.splitlines() if line.startswith(row.client_id))
    assert "resource" in line
    assert "MCP replicas" in line


async def test_it_learns_about_any_clients_access_token(
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
    resource_server: dict[str, str],
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await introspect(client, resource_server, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["active"] is True
    assert body["client_id"] == public_client["client_id"]
    assert body["aud"] == RESOURCE
    assert body["scope"] == "mcp mcp:write"
    uuid.UUID(body["gid"])
    uuid.UUID(body["sub"])


async def test_refresh_tokens_are_none_of_its_business(
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
    resource_server: dict[str, str],
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await introspect(client, resource_server, tokens["refresh_token"])
    assert response.json() == {"active": False}


async def test_inactive_once_the_grant_is_revoked(
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
    resource_server: dict[str, str],
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    revoked = await client.post(
        "/revoke",
        data={"token": tokens["refresh_token"], "client_id": public_client["client_id"]},
    )
    assert revoked.status_code == 200
    response = await introspect(client, resource_server, tokens["access_token"])
    assert response.json() == {"active": False}


async def test_inactive_once_the_user_is_disabled(
    app: FastAPI, client: httpx.AsyncClient, resource_server: dict[str, str]
) -> None:
    email = await sign_up(client)
    registered = await register(client)
    _, tokens = await full_flow(client, registered["client_id"])
    assert (await introspect(client, resource_server, tokens["access_token"])).json()["active"]
    await db_execute(app, update(User).where(User.email == email).values(disabled_at=utcnow()))
    response = await introspect(client, resource_server, tokens["access_token"])
    assert response.json() == {"active": False}


async def test_a_wrong_secret_or_another_method_is_refused(
    client: httpx.AsyncClient, resource_server: dict[str, str]
) -> None:
    wrong = {**resource_server, "client_secret": resource_server["client_secret"] + "x"}
    assert_oauth_error(await introspect(client, wrong, "a.b.c"), 401, "invalid_client")
    as_post = await client.post("/introspect", data={"token": "a.b.c", **resource_server})
    assert_oauth_error(as_post, 401, "invalid_client")


async def test_it_cannot_authorize_or_obtain_tokens(
    client: httpx.AsyncClient, user: str, resource_server: dict[str, str]
) -> None:
    page = await client.get(Authorization(resource_server["client_id"]).url())
    assert page.status_code == 400
    assert "location" not in page.headers
    token = await client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": "gh_ac_x",
            "code_verifier": "v" * 43,
            "redirect_uri": "http://127.0.0.1:9/cb",
        },
        headers=basic(resource_server["client_id"], resource_server["client_secret"]),
    )
    assert_oauth_error(token, 400, "invalid_request")
    refresh = await client.post(
        "/token",
        data={"grant_type": "refresh_token", "refresh_token": "gh_rt_x"},
        headers=basic(resource_server["client_id"], resource_server["client_secret"]),
    )
    assert refresh.status_code == 400


async def test_purge_keeps_an_unused_resource_server(
    app: FastAPI, backend: Backend, tmp_path: Path
) -> None:
    settings = app.state.settings
    fresh = add_resource_server(backend, tmp_path)
    long_ago = utcnow() - timedelta(seconds=settings.registration_unused_ttl + 60)
    await db_execute(
        app,
        update(OAuthClient)
        .where(OAuthClient.client_id == fresh["client_id"])
        .values(created_at=long_ago),
    )
    async with app.state.sessionmaker() as session, session.begin():
        await purge(session, settings, publish_window(settings.access_token_ttl))
    remaining = await db_rows(
        app, select(OAuthClient.id).where(OAuthClient.client_id == fresh["client_id"])
    )
    assert len(remaining) == 1


async def test_a_revoked_resource_server_is_refused(
    client: httpx.AsyncClient, backend: Backend, tmp_path: Path
) -> None:
    fresh = add_resource_server(backend, tmp_path)
    assert (await introspect(client, fresh, "a.b.c")).json() == {"active": False}
    gatehouse(backend, tmp_path, "clients", "revoke", fresh["client_id"])
    assert_oauth_error(await introspect(client, fresh, "a.b.c"), 401, "invalid_client")


def test_a_new_credential_names_the_earlier_ones_that_still_work(
    backend: Backend, tmp_path: Path, resource_server: dict[str, str]
) -> None:
    withdrawn = add_resource_server(backend, tmp_path)
    gatehouse(backend, tmp_path, "clients", "revoke", withdrawn["client_id"])
    result = gatehouse(backend, tmp_path, "clients", "add-resource-server")
    note = result.stderr.splitlines()[-1]
    assert "earlier resource-server credential(s) still work" in note
    assert resource_server["client_id"] in note
    assert withdrawn["client_id"] not in note
    assert resource_server["client_secret"] not in result.stderr
