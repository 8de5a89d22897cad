"""RFC 7662 /introspect: confidential clients only; active and the claims, or just inactive."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.helpers import NESTED_HEADER_TOKEN
from tests.oauth.flow import register
from tests.oauth.support import ISSUER, RESOURCE, assert_oauth_error, full_flow, verify_jwt
from tests.oauth.test_token_endpoint import basic


@pytest.fixture
async def post_client(client: httpx.AsyncClient) -> dict[str, Any]:
    """A confidential client (client_secret_post) that owns the tokens it introspects."""
    return await register(client, token_endpoint_auth_method="client_secret_post")


async def introspect(
    client: httpx.AsyncClient, caller: dict[str, Any], token: str
) -> httpx.Response:
    return await client.post(
        "/introspect",
        data={"token": token},
        headers=basic(caller["client_id"], caller["client_secret"]),
    )


async def own_tokens(client: httpx.AsyncClient, post_client: dict[str, Any]) -> dict[str, Any]:
    _, tokens = await full_flow(
        client, post_client["client_id"], client_secret=post_client["client_secret"]
    )
    return tokens


async def introspect_post(
    client: httpx.AsyncClient, caller: dict[str, Any], token: str
) -> httpx.Response:
    return await client.post(
        "/introspect",
        data={
            "token": token,
            "client_id": caller["client_id"],
            "client_secret": caller["client_secret"],
        },
    )


async def test_public_client_may_not_introspect(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await client.post(
        "/introspect",
        data={"token": tokens["access_token"], "client_id": public_client["client_id"]},
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_wrong_secret_may_not_introspect(
    client: httpx.AsyncClient, basic_client: dict[str, Any]
) -> None:
    response = await client.post(
        "/introspect",
        data={"token": "x"},
        headers=basic(basic_client["client_id"], "gh_cs_wrong"),
    )
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic ")


async def test_active_access_token_with_its_claims(
    client: httpx.AsyncClient, user: str, post_client: dict[str, Any]
) -> None:
    tokens = await own_tokens(client, post_client)
    response = await introspect_post(client, post_client, tokens["access_token"])
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    claims = (await verify_jwt(client, tokens["access_token"])).claims
    assert body["active"] is True
    assert body["scope"] == "mcp mcp:write"
    assert body["client_id"] == post_client["client_id"]
    assert body["sub"] == claims["sub"]
    assert body["aud"] == RESOURCE
    assert body["iss"] == ISSUER
    assert body["exp"] == claims["exp"]
    assert body["iat"] == claims["iat"]
    assert body["jti"] == claims["jti"]
    assert body["token_type"] == "Bearer"


async def test_active_refresh_token(
    client: httpx.AsyncClient, user: str, post_client: dict[str, Any]
) -> None:
    tokens = await own_tokens(client, post_client)
    body = (await introspect_post(client, post_client, tokens["refresh_token"])).json()
    assert body["active"] is True
    assert body["client_id"] == post_client["client_id"]
    assert body["scope"] == "mcp mcp:write"


async def test_unknown_token_is_inactive_and_nothing_else(
    client: httpx.AsyncClient, basic_client: dict[str, Any]
) -> None:
    for token in ("gh_rt_nonsense", "a.b.c", NESTED_HEADER_TOKEN):
        response = await introspect(client, basic_client, token)
        assert response.status_code == 200
        assert response.json() == {"active": False}


async def test_inactive_after_revocation(
    client: httpx.AsyncClient, user: str, post_client: dict[str, Any]
) -> None:
    tokens = await own_tokens(client, post_client)
    revoked = await client.post(
        "/revoke",
        data={
            "token": tokens["refresh_token"],
            "client_id": post_client["client_id"],
            "client_secret": post_client["client_secret"],
        },
    )
    assert revoked.status_code == 200
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert (await introspect_post(client, post_client, token)).json() == {"active": False}


async def test_another_clients_token_is_inactive(
    client: httpx.AsyncClient,
    user: str,
    public_client: dict[str, Any],
    basic_client: dict[str, Any],
) -> None:
    # RFC 7662 §4: the server decides which tokens a caller may learn about; here, its own.
    _, tokens = await full_flow(client, public_client["client_id"])
    for token in (tokens["access_token"], tokens["refresh_token"]):
        assert (await introspect(client, basic_client, token)).json() == {"active": False}
