"""A standards client for the tests: registration, PKCE authorization, tokens (RFC 6749/7636)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.helpers import csrf_from

REDIRECT_URI = "http://127.0.0.1:33418/callback"
PENDING_RE = re.compile(r'name="pending" value="([^"]+)"')


def new_verifier() -> str:
    return secrets.token_urlsafe(48)


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


@dataclass
class Authorization:
    """One authorization request's parameters, PKCE verifier included."""

    client_id: str
    redirect_uri: str = REDIRECT_URI
    scope: str | None = "mcp mcp:write"
    resource: str | None = None
    state: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    verifier: str = field(default_factory=new_verifier)
    extra: dict[str, str] = field(default_factory=dict)
    method: str | None = "S256"

    def params(self) -> dict[str, str]:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "code_challenge": s256(self.verifier),
        }
        if self.method:
            params["code_challenge_method"] = self.method
        if self.scope is not None:
            params["scope"] = self.scope
        if self.resource is not None:
            params["resource"] = self.resource
        params.update(self.extra)
        return {k: v for k, v in params.items() if v is not None}

    def url(self) -> str:
        return "/authorize?" + urlencode(self.params())


async def register(
    client: httpx.AsyncClient, *, redirect_uris: list[str] | None = None, **metadata: Any
) -> dict[str, Any]:
    body = {
        "client_name": "Test Client",
        "redirect_uris": redirect_uris or [REDIRECT_URI],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        **metadata,
    }
    response = await client.post("/register", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code in (302, 303), response.text
    location = response.headers["location"]
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def consent(
    client: httpx.AsyncClient,
    page: httpx.Response,
    *,
    action: str = "approve",
    scopes: list[str] | None = None,
) -> httpx.Response:
    """Submit the consent page as a browser would (scopes: the ticked optional scopes)."""
    assert page.status_code == 200, page.text
    pending = PENDING_RE.search(page.text)
    assert pending, "not a consent page"
    data: list[tuple[str, str]] = [
        ("csrf_token", csrf_from(page.text)),
        ("pending", pending.group(1)),
        ("action", action),
    ]
    for scope in ["mcp:write"] if scopes is None else scopes:
        data.append(("scope", scope))
    return await client.post(
        "/consent",
        content=urlencode(data),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def authorize_code(
    client: httpx.AsyncClient, auth: Authorization, *, scopes: list[str] | None = None
) -> str:
    """A signed-in browser approves the request; returns the code (state and iss checked)."""
    response = await client.get(auth.url())
    if response.status_code == 200:
        response = await consent(client, response, scopes=scopes)
    params = redirect_params(response)
    assert params.get("state") == auth.state
    assert "code" in params, params
    return params["code"]


async def exchange(
    client: httpx.AsyncClient, auth: Authorization, code: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": auth.redirect_uri,
        "code_verifier": auth.verifier,
        "client_id": auth.client_id,
        **extra,
    }
    return await client.post("/token", data={k: v for k, v in data.items() if v is not None})


async def refresh(
    client: httpx.AsyncClient, client_id: str, refresh_token: str, **extra: str
) -> httpx.Response:
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client_id,
        **extra,
    }
    return await client.post("/token", data=data)
