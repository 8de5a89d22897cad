"""Discovery: RFC 8414 authorization server metadata and RFC 9728 protected resource metadata."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.oauth.support import ISSUER, RESOURCE

AS_PATHS = ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]
PRM_PATHS = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]


@pytest.mark.parametrize("path", AS_PATHS)
async def test_issuer_is_public_url_character_for_character(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200
    assert response.json()["issuer"] == ISSUER


async def test_openid_configuration_is_the_same_document(client: httpx.AsyncClient) -> None:
    first, second = [(await client.get(path)).json() for path in AS_PATHS]
    assert first == second


@pytest.mark.parametrize("path", PRM_PATHS)
async def test_rfc8414_issuer_equals_rfc9728_authorization_server(
    client: httpx.AsyncClient, path: str
) -> None:
    issuer = (await client.get(AS_PATHS[0])).json()["issuer"]
    resource = (await client.get(path)).json()
    assert resource["authorization_servers"][0] == issuer
    assert resource["resource"] == RESOURCE
    assert resource["bearer_methods_supported"] == ["header"]
    assert resource["scopes_supported"] == ["mcp", "mcp:write"]


async def test_advertises_exactly_what_the_issue_requires(client: httpx.AsyncClient) -> None:
    meta = (await client.get(AS_PATHS[0])).json()
    assert meta["authorization_endpoint"] == f"{ISSUER}/authorize"
    assert meta["token_endpoint"] == f"{ISSUER}/token"
    assert meta["registration_endpoint"] == f"{ISSUER}/register"
    assert meta["revocation_endpoint"] == f"{ISSUER}/revoke"
    assert meta["introspection_endpoint"] == f"{ISSUER}/introspect"
    assert meta["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert meta["scopes_supported"] == ["mcp", "mcp:write", "offline_access"]
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert meta["token_endpoint_auth_methods_supported"] == [
        "none",
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ]
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["RS256", "ES256", "PS256"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["client_id_metadata_document_supported"] is True


async def test_every_advertised_endpoint_answers(client: httpx.AsyncClient) -> None:
    meta = (await client.get(AS_PATHS[0])).json()
    endpoints = {k: v for k, v in meta.items() if k.endswith("_endpoint") or k == "jwks_uri"}
    assert len(endpoints) == 6
    for name, url in endpoints.items():
        assert url.startswith(ISSUER + "/"), (name, url)
        path = urlsplit(url).path
        method = "GET" if name in ("authorization_endpoint", "jwks_uri") else "POST"
        response = await client.request(method, path)
        assert response.status_code not in (404, 405), (name, response.status_code)
        if name == "jwks_uri":
            assert response.status_code == 200
