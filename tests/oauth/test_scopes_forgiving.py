"""Scopes, forgiving and exact (RFC 6749 §3.3): unknown scopes are dropped at /authorize, /token
and /register; offline_access is accepted and listed only in the AS metadata; refresh tokens go to
every client registered for the refresh_token grant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.oauth.flow import Authorization, consent, exchange, redirect_params, refresh, register
from tests.oauth.support import assert_oauth_error, full_flow, verify_jwt

EXTRA_SCOPES = ["offline_access", "openid", "claudeai", "profile email", "(bad)\\"]


@pytest.mark.parametrize("extra", EXTRA_SCOPES)
async def test_authorize_drops_unknown_scopes_and_grants_what_it_knows(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any], extra: str
) -> None:
    auth = Authorization(public_client["client_id"], scope=f"mcp mcp:write {extra}")
    page = await client.get(auth.url())
    assert page.status_code == 200, page.text
    # The consent page lists what would be granted, and nothing else.
    assert 'value="mcp:write"' in page.text
    for word in extra.split():
        assert word not in page.text
    params = redirect_params(await consent(client, page))
    token = await exchange(client, auth, params["code"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["scope"] == "mcp mcp:write"
    assert "refresh_token" in body
    assert (await verify_jwt(client, body["access_token"])).claims["scope"] == "mcp mcp:write"


async def test_only_unknown_scopes_get_the_default(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"], scope="openid offline_access")
    assert tokens["scope"] == "mcp"


async def test_refresh_tokens_do_not_depend_on_offline_access(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, without = await full_flow(client, public_client["client_id"], scope="mcp")
    _, with_it = await full_flow(client, public_client["client_id"], scope="mcp offline_access")
    assert without["refresh_token"].startswith("gh_rt_")
    assert with_it["refresh_token"].startswith("gh_rt_")
    assert with_it["scope"] == without["scope"] == "mcp"


async def test_a_client_without_the_refresh_grant_gets_no_refresh_token(
    client: httpx.AsyncClient, user: str
) -> None:
    registered = await register(client, grant_types=["authorization_code"])
    _, tokens = await full_flow(client, registered["client_id"], scope="mcp offline_access")
    assert "refresh_token" not in tokens
    assert tokens["scope"] == "mcp"


async def test_token_refresh_drops_unknown_scopes(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"])
    response = await refresh(
        client,
        public_client["client_id"],
        tokens["refresh_token"],
        scope="mcp offline_access openid claudeai",
    )
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "mcp"


async def test_token_refresh_still_refuses_a_known_scope_not_granted(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    # RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted".
    _, tokens = await full_flow(client, public_client["client_id"], ticked=[])
    response = await refresh(
        client, public_client["client_id"], tokens["refresh_token"], scope="mcp:write openid"
    )
    assert_oauth_error(response, 400, "invalid_scope")


async def test_authorization_code_exchange_ignores_a_scope_parameter(
    client: httpx.AsyncClient, user: str, public_client: dict[str, Any]
) -> None:
    _, tokens = await full_flow(client, public_client["client_id"], scope="mcp openid")
    assert tokens["scope"] == "mcp"


@pytest.mark.parametrize(
    ("asked", "stored"),
    [
        ("mcp mcp:write offline_access openid", "mcp mcp:write"),
        ("mcp claudeai", "mcp"),
        ("openid profile offline_access", None),
    ],
)
async def test_register_drops_unknown_scopes(
    client: httpx.AsyncClient, asked: str, stored: str | None
) -> None:
    registered = await register(client, scope=asked)
    assert registered.get("scope") == stored


async def test_a_registration_naming_only_unknown_scopes_may_ask_for_write(
    client: httpx.AsyncClient, user: str
) -> None:
    registered = await register(client, scope="openid offline_access")
    _, tokens = await full_flow(client, registered["client_id"], scope="mcp mcp:write")
    assert tokens["scope"] == "mcp mcp:write"


async def test_a_registration_for_read_only_cannot_ask_for_write(
    client: httpx.AsyncClient, user: str
) -> None:
    registered = await register(client, scope="mcp openid")
    auth = Authorization(registered["client_id"], scope="mcp mcp:write")
    params = redirect_params(await client.get(auth.url()))
    assert params["error"] == "invalid_scope"


async def test_offline_access_is_in_the_authorization_server_metadata_only(
    client: httpx.AsyncClient,
) -> None:
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        meta = (await client.get(path)).json()
        assert meta["scopes_supported"] == ["mcp", "mcp:write", "offline_access"]
    resource = (await client.get("/.well-known/oauth-protected-resource/mcp")).json()
    assert resource["scopes_supported"] == ["mcp", "mcp:write"]
    challenge = await client.post("/mcp", json={})
    assert challenge.status_code == 401
    assert 'scope="mcp mcp:write"' in challenge.headers["www-authenticate"]
    assert "offline_access" not in challenge.headers["www-authenticate"]
