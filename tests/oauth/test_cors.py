"""CORS: the public OAuth endpoints answer any origin without credentials; pages never do."""

from __future__ import annotations

import httpx
import pytest

ORIGIN = "https://example.com"
PUBLIC_GET = [
    "/.well-known/oauth-authorization-server",
    "/.well-known/openid-configuration",
    "/.well-known/oauth-protected-resource",
    "/.well-known/oauth-protected-resource/mcp",
    "/jwks.json",
]
PUBLIC_POST = ["/token", "/register", "/revoke"]


@pytest.mark.parametrize("path", PUBLIC_GET + PUBLIC_POST)
async def test_preflight_is_answered_for_any_origin(client: httpx.AsyncClient, path: str) -> None:
    method = "GET" if path in PUBLIC_GET else "POST"
    response = await client.options(
        path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert method in response.headers["access-control-allow-methods"]
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed


@pytest.mark.parametrize("path", PUBLIC_GET)
async def test_get_carries_cors_headers_and_exposes_www_authenticate(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path, headers={"Origin": ORIGIN})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("path", PUBLIC_POST)
async def test_post_error_carries_cors_headers(client: httpx.AsyncClient, path: str) -> None:
    response = await client.post(path, headers={"Origin": ORIGIN}, data={})
    assert response.status_code in (400, 401)
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


@pytest.mark.parametrize("path", ["/authorize", "/sign-in", "/account", "/consent"])
async def test_authorize_and_pages_get_no_cors_headers(
    client: httpx.AsyncClient, path: str
) -> None:
    preflight = await client.options(
        path, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    response = await client.get(path, headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers
