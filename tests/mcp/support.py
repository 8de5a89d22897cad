"""What the /mcp tests share: a grant obtained through the real OAuth flow, raw JSON-RPC calls on
either protocol generation, challenge parsing, and tokens forged with one thing wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey

from tests.helpers import sign_up
from tests.oauth.flow import Authorization, authorize_code, exchange, register

MODERN = "2026-07-28"
LEGACY = "2025-06-18"
BOTH = "application/json, text/event-stream"
ALL_SCOPES = "mcp mcp:write"

_PARAMS_RE = re.compile(r'\w+="[^"\\]*"(?:, \w+="[^"\\]*")*')
_PARAM_RE = re.compile(r'(\w+)="([^"\\]*)"')


@dataclass
class Grant:
    """One user's approval of one client, and the tokens it gave."""

    email: str
    client_id: str
    access_token: str
    refresh_token: str
    scope: str


async def obtain_grant(
    client: httpx.AsyncClient, *, write: bool = True, email: str | None = None
) -> Grant:
    """Sign up (unless a user is signed in on `client`), register a client, approve, exchange."""
    if email is None:
        email = await sign_up(client)
    registered = await register(client)
    auth = Authorization(registered["client_id"])
    code = await authorize_code(client, auth, scopes=["mcp:write"] if write else [])
    response = await exchange(client, auth, code)
    assert response.status_code == 200, response.text
    body = response.json()
    return Grant(
        email=email,
        client_id=registered["client_id"],
        access_token=body["access_token"],
        refresh_token=body["refresh_token"],
        scope=body["scope"],
    )


def metadata_url(public_url: str) -> str:
    return f"{public_url}/.well-known/oauth-protected-resource/mcp"


# -- JSON-RPC over Streamable HTTP -----------------------------------------------------------------


def mcp_request(
    method: str,
    params: dict[str, Any] | None = None,
    *,
    token: str | None,
    version: str = MODERN,
    accept: str = BOTH,
    request_id: int = 1,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers of one request. 2026-07-28 carries its envelope in params._meta and
    mirrors method and name in headers; the handshake versions only name the version."""
    params = dict(params or {})
    headers = {
        "Accept": accept,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": version,
    }
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if version == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
            "io.modelcontextprotocol/clientInfo": {"name": "gatehouse-tests", "version": "1"},
        }
        headers["Mcp-Method"] = method
        name = params.get("uri" if method == "resources/read" else "name")
        if isinstance(name, str):
            headers["Mcp-Name"] = name
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    return body, headers


async def post_mcp(
    client: httpx.AsyncClient,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    token: str | None,
    path: str = "/mcp",
    **options: Any,
) -> httpx.Response:
    body, headers = mcp_request(method, params, token=token, **options)
    return await client.post(path, json=body, headers=headers)


def reply(response: httpx.Response) -> dict[str, Any]:
    """The JSON-RPC reply, whether it came as plain JSON or as the last SSE message."""
    assert response.status_code == 200, (response.status_code, response.text)
    if response.headers["content-type"].startswith("text/event-stream"):
        data = [
            line.removeprefix("data:").strip()
            for line in response.text.splitlines()
            if line.startswith("data:")
        ]
        assert data, response.text
        return dict(json.loads(data[-1]))
    return dict(response.json())


def result(response: httpx.Response) -> dict[str, Any]:
    message = reply(response)
    assert "result" in message, message
    return dict(message["result"])


async def call_tool(
    client: httpx.AsyncClient, token: str, name: str, arguments: dict[str, Any] | None = None
) -> dict[str, Any]:
    """tools/call; returns the CallToolResult (check is_error/isError yourself)."""
    response = await post_mcp(
        client, "tools/call", {"name": name, "arguments": arguments or {}}, token=token
    )
    return result(response)


def structured(call_result: dict[str, Any]) -> dict[str, Any]:
    assert not call_result.get("isError"), call_result
    return dict(call_result["structuredContent"])


def error_text(call_result: dict[str, Any]) -> str:
    assert call_result.get("isError") is True, call_result
    return " ".join(block["text"] for block in call_result["content"] if block["type"] == "text")


# -- challenges ------------------------------------------------------------------------------------


def challenge(response: httpx.Response) -> dict[str, str]:
    """The parameters of the response's single Bearer challenge (RFC 6750 §3)."""
    header = response.headers.get("www-authenticate")
    assert header is not None, (response.status_code, response.text)
    scheme, _, rest = header.partition(" ")
    assert scheme == "Bearer", header
    assert _PARAMS_RE.fullmatch(rest), f"not a well-formed auth-param list: {header}"
    params = dict(_PARAM_RE.findall(rest))
    assert len(params) == len(_PARAM_RE.findall(rest)), f"a parameter repeats: {header}"
    return params


# -- tokens with one thing wrong -------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A JWT's header and claims, not verified."""
    header, payload, _ = token.split(".")

    def decode(part: str) -> dict[str, Any]:
        return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))

    return decode(header), decode(payload)


async def resign(
    app: FastAPI,
    token: str,
    *,
    claims: dict[str, Any] | None = None,
    header: dict[str, Any] | None = None,
    key: ECKey | None = None,
) -> str:
    """`token` with some claims or header fields changed, signed ES256 by the app's active key
    (or by `key`): every other property of a genuine token stays as issued."""
    old_header, old_claims = unverified(token)
    kid, active = await app.state.signing_keys.active()
    new_header = {**old_header, "kid": kid, **(header or {})}
    new_claims = {**old_claims, **(claims or {})}
    return jwt.encode(new_header, new_claims, key or active, algorithms=["ES256"])


def unsigned(token: str, **header: Any) -> str:
    """RFC 7519 §6 "unsecured JWT": alg none, empty signature."""
    old_header, claims = unverified(token)
    new_header = {**old_header, "alg": "none", **header}
    return f"{_b64(json.dumps(new_header).encode())}.{_b64(json.dumps(claims).encode())}."


def hmac_signed(token: str, secret: bytes) -> str:
    """The same claims, HS256 with `secret` (the classic public-key-as-HMAC-secret confusion)."""
    old_header, claims = unverified(token)
    new_header = {**old_header, "alg": "HS256"}
    signing_input = f"{_b64(json.dumps(new_header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def an_hour_ago() -> int:
    return int(time.time()) - 3600
