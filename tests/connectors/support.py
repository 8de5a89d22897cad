"""What the connector and vault tests share: a person who connected GitHub on the consent page of
an in-process app (through the real OAuth flow), and raw MCP tool calls."""

from __future__ import annotations

import json
import secrets
import socket
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import FastAPI

from tests.conftest import missing
from tests.helpers import csrf_from, form_post, sign_up, user_by_email
from tests.oauth.flow import PENDING_RE, Authorization, exchange, redirect_params, register

MODERN = "2026-07-28"


def github_token(login: str) -> str:
    """A token the fake GitHub API answers as `login`, unique to the caller."""
    return f"ghp_{login}_{secrets.token_hex(12)}"


@dataclass
class Person:
    web: httpx.AsyncClient  # signed in
    email: str
    user_id: uuid.UUID
    github_token: str
    access_token: str


async def submit_consent(
    web: httpx.AsyncClient, page: httpx.Response, *, action: str = "approve", credential: str = ""
) -> httpx.Response:
    """Submit a consent page as a browser would, pasting `credential` into the GitHub field."""
    assert page.status_code in (200, 400), page.text
    pending = PENDING_RE.search(page.text)
    assert pending, "not a consent page"
    data = [
        ("csrf_token", csrf_from(page.text)),
        ("pending", pending.group(1)),
        ("action", action),
        ("scope", "mcp:write"),
    ]
    if 'name="credential_github"' in page.text:
        data.append(("credential_github", credential))
    return await web.post(
        "/consent",
        content=urlencode(data),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )


async def access_token(web: httpx.AsyncClient, *, credential: str = "") -> str:
    """Register a client, approve it (pasting `credential` if asked), exchange the code."""
    registered = await register(web)
    auth = Authorization(registered["client_id"])
    response = await web.get(auth.url())
    if response.status_code == 200:
        response = await submit_consent(web, response, credential=credential)
    params = redirect_params(response)
    assert params.get("state") == auth.state
    token = await exchange(web, auth, params["code"])
    assert token.status_code == 200, token.text
    return str(token.json()["access_token"])


async def connected_person(app: FastAPI, web: httpx.AsyncClient, login: str) -> Person:
    """Sign up on `web`, approve a client and connect a fresh GitHub token for `login`."""
    email = await sign_up(web)
    token = github_token(login)
    bearer = await access_token(web, credential=token)
    user = await user_by_email(app, email)
    return Person(web, email, user.id, token, bearer)


async def replace_credential(web: httpx.AsyncClient, secret: str) -> httpx.Response:
    return await form_post(
        web, "/account/credentials", "/account/credentials/github", {"secret": secret}
    )


async def delete_credential(web: httpx.AsyncClient) -> httpx.Response:
    return await form_post(web, "/account/credentials", "/account/credentials/github/delete", {})


def close_rate_limit_connections(app: FastAPI) -> None:
    """The app's lifespan leaves the rate limits' Redis connections open at shutdown (the gap
    tests/auth/test_sign_in.py notes): close them so "warnings are errors" holds."""
    if app.state.settings.redis_url:
        app.state.rate_limits.storage.bridge.storage.connection_pool.disconnect()


def require_redis() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        missing("Redis", f"start it at redis://127.0.0.1:6379 ({exc})")


# -- MCP over Streamable HTTP (2026-07-28, sessionless) ---------------------------------------


async def call_tool(
    client: httpx.AsyncClient, token: str, name: str, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """tools/call; returns the CallToolResult (check isError yourself)."""
    params = {
        "name": name,
        "arguments": arguments or {},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "gatehouse-tests", "version": "1"},
        },
    }
    headers = {
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        "MCP-Protocol-Version": MODERN,
        "Mcp-Method": "tools/call",
        "Mcp-Name": name,
        "Authorization": f"Bearer {token}",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}
    response = await client.post("/mcp", json=body, headers=headers)
    assert response.status_code == 200, (response.status_code, response.text)
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [
            line.removeprefix("data:").strip()
            for line in response.text.splitlines()
            if line.startswith("data:")
        ]
        message = json.loads(data[-1])
    else:
        message = response.json()
    assert "result" in message, message
    return dict(message["result"])


def structured(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("isError"), result
    return dict(result["structuredContent"])


def error_text(result: dict[str, Any]) -> str:
    assert result.get("isError") is True, result
    return " ".join(block["text"] for block in result["content"] if block["type"] == "text")
