"""Redirect URI hosts must be DNS names (IDNA for Unicode) or IP literals, at /register and in
Client ID Metadata Documents; the consent page's CSP names only the parsed, re-serialised origin
(issue 19, finding 4: `form-action 'self' https://a.example;sandbox`)."""

from __future__ import annotations

import httpx
import pytest

from app.oauth.redirect_uris import csp_source, redirect_uri_problem
from tests.helpers import sign_up
from tests.oauth.flow import Authorization, register

HOSTILE = [
    "https://a.example;sandbox/cb",
    "https://a.example,b.example/cb",
    "https://a'b.example/cb",
    "https://*.example/cb",
    "https://a.example%3Bsandbox/cb",
    "https://-leading.example/cb",
    "https://a.example:99999/cb",
    "com.example.app://x;y/cb",
]


@pytest.mark.parametrize("uri", HOSTILE)
def test_a_hostile_host_is_not_a_redirect_uri(uri: str) -> None:
    assert redirect_uri_problem(uri) is not None


@pytest.mark.parametrize(
    ("uri", "source"),
    [
        ("https://App.Example/cb", "https://app.example"),
        ("https://bücher.example/cb", "https://xn--bcher-kva.example"),
        ("http://127.0.0.1:3000/cb", "http://127.0.0.1:3000"),
        ("http://[::1]:8080/cb", "http://[::1]:8080"),
        ("cursor://anysphere.cursor-mcp/oauth/callback", "cursor:"),
        ("https://a.example;sandbox/cb", ""),
    ],
)
def test_the_csp_source_is_the_reserialised_origin(uri: str, source: str) -> None:
    assert csp_source(uri) == source


@pytest.mark.parametrize("uri", HOSTILE[:4])
async def test_register_refuses_a_hostile_host(client: httpx.AsyncClient, uri: str) -> None:
    response = await client.post(
        "/register",
        json={"client_name": "x", "redirect_uris": [uri], "token_endpoint_auth_method": "none"},
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


async def test_the_consent_page_csp_names_exactly_the_redirect_origin(
    client: httpx.AsyncClient,
) -> None:
    await sign_up(client)
    registered = await register(client, redirect_uris=["https://App.Example:8443/oauth/cb"])
    auth = Authorization(
        client_id=registered["client_id"], redirect_uri="https://App.Example:8443/oauth/cb"
    )
    page = await client.get(auth.url())
    assert page.status_code == 200
    directives = dict(
        d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";") if d
    )
    assert directives["form-action"] == "'self' https://app.example:8443"
