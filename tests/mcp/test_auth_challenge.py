"""Every refusal at /mcp, with its status and its exact WWW-Authenticate challenge (RFC 6750 §3,
RFC 9728 §5.1, MCP "Authorization"), and the HTTP rules of the endpoint itself (Host, Origin,
CORS, body limit, parse errors, the trailing slash, JSON or SSE)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from joserfc.jwk import ECKey
from sqlalchemy import select

from app.auth import service as accounts
from app.auth.models import User
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import NESTED_HEADER_TOKEN
from tests.mcp.support import (
    ALL_SCOPES,
    BOTH,
    LEGACY,
    MODERN,
    Grant,
    an_hour_ago,
    call_tool,
    challenge,
    hmac_signed,
    metadata_url,
    obtain_grant,
    post_mcp,
    resign,
    result,
    structured,
    unsigned,
)

PUBLIC_URL = "http://127.0.0.1:8000"  # make_settings' PUBLIC_URL
PRM = metadata_url(PUBLIC_URL)
APP_ORIGIN = "https://app.example"


@pytest.fixture
async def grant(client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(client)


def invalid_token(description: str) -> dict[str, str]:
    return {
        "error": "invalid_token",
        "error_description": description,
        "resource_metadata": PRM,
        "scope": ALL_SCOPES,
    }


async def whoami(client: httpx.AsyncClient, token: str | None) -> httpx.Response:
    return await post_mcp(client, "tools/call", {"name": "whoami", "arguments": {}}, token=token)


async def refused_within(client: httpx.AsyncClient, token: str, bound: float) -> httpx.Response:
    """Call until refused, at most `bound` seconds: a bound on the wait, not a speed assertion."""
    deadline = time.monotonic() + bound
    while True:
        response = await whoami(client, token)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.2)


# -- no token, bad tokens --------------------------------------------------------------------------


async def test_no_token_gets_401_naming_metadata_and_scopes_without_an_error_code(
    client: httpx.AsyncClient,
) -> None:
    response = await whoami(client, None)
    assert response.status_code == 401
    # RFC 6750 §3.1: a request with no credentials gets no error code.
    assert challenge(response) == {"resource_metadata": PRM, "scope": ALL_SCOPES}
    assert response.headers["www-authenticate"] == (
        f'Bearer resource_metadata="{PRM}", scope="{ALL_SCOPES}"'
    )
    assert response.headers["cache-control"] == "no-store"


async def test_a_genuine_token_is_accepted(client: httpx.AsyncClient, grant: Grant) -> None:
    me = structured(result(await whoami(client, grant.access_token)))
    assert me["email"] == grant.email


@pytest.mark.parametrize("token", ["not-a-jwt", NESTED_HEADER_TOKEN], ids=["flat", "nested-header"])
async def test_garbage_token_gets_invalid_token(client: httpx.AsyncClient, token: str) -> None:
    response = await whoami(client, token)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the access token is malformed")


async def test_expired_token_gets_invalid_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    expired = await resign(
        app, grant.access_token, claims={"iat": an_hour_ago() - 60, "exp": an_hour_ago()}
    )
    response = await whoami(client, expired)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the access token has expired")


async def test_token_for_another_audience_gets_invalid_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    # RFC 8707: a token minted for another resource must not be accepted here.
    other = await resign(app, grant.access_token, claims={"aud": "https://other.example/mcp"})
    response = await whoami(client, other)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the access token's aud claim is not accepted")


async def test_token_from_another_issuer_gets_invalid_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    other = await resign(app, grant.access_token, claims={"iss": "https://issuer.example"})
    response = await whoami(client, other)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the access token's iss claim is not accepted")


@pytest.mark.parametrize(
    ("kid", "description"),
    [
        ("ours", "the access token's signature is not valid"),
        ("fresh", "the access token was signed by an unknown key"),
    ],
    ids=["under-our-kid", "under-a-new-kid"],
)
async def test_token_signed_by_an_unknown_key_gets_invalid_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant, kid: str, description: str
) -> None:
    stranger = ECKey.generate_key("P-256", private=True)
    header = {} if kid == "ours" else {"kid": "gh-stranger-0001"}
    forged = await resign(app, grant.access_token, header=header, key=stranger)
    response = await whoami(client, forged)
    assert response.status_code == 401
    assert challenge(response) == invalid_token(description)


async def test_alg_none_gets_invalid_token(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await whoami(client, unsigned(grant.access_token))
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the access token's algorithm is not accepted")


async def test_hs256_keyed_with_our_public_key_gets_invalid_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    # RFC 8725 §2.1: the algorithm-confusion attack.
    _, key = await app.state.signing_keys.active()
    forged = hmac_signed(grant.access_token, key.as_pem(private=False))
    response = await whoami(client, forged)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the access token's algorithm is not accepted")


async def test_jwt_typ_instead_of_at_jwt_gets_invalid_token(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    # RFC 9068 §4: an ID token or any other JWT signed by the same key is not an access token.
    other = await resign(app, grant.access_token, header={"typ": "JWT"})
    response = await whoami(client, other)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the token is not an access token")


async def test_a_non_bearer_authorization_gets_invalid_request(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}},
        headers={"Authorization": "Basic dXNlcjpwYXNz", "Accept": BOTH},
    )
    assert response.status_code == 401
    assert challenge(response) == {
        "error": "invalid_request",
        "error_description": "use a Bearer token",
        "resource_metadata": PRM,
        "scope": ALL_SCOPES,
    }


# -- revocation and disabled users: seen within 5 seconds ------------------------------------------


async def test_revoked_grant_is_refused_within_five_seconds(
    client: httpx.AsyncClient, grant: Grant
) -> None:
    assert (await whoami(client, grant.access_token)).status_code == 200
    revoked = await client.post(
        "/revoke", data={"token": grant.refresh_token, "client_id": grant.client_id}
    )
    assert revoked.status_code == 200

    response = await refused_within(client, grant.access_token, bound=6.0)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the grant was revoked or the user disabled")


async def test_disabled_user_is_refused_within_five_seconds(
    app: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    assert (await whoami(client, grant.access_token)).status_code == 200
    async with app.state.sessionmaker() as session, session.begin():
        user = (await session.execute(select(User).where(User.email == grant.email))).scalar_one()
        await accounts.set_disabled(session, user=user, disabled=True)

    response = await refused_within(client, grant.access_token, bound=6.0)
    assert response.status_code == 401
    assert challenge(response) == invalid_token("the grant was revoked or the user disabled")


# -- scopes: 403 insufficient_scope for write tools ------------------------------------------------


@pytest.mark.parametrize(
    ("tool", "arguments"),
    [("notes_create", {"title": "nope"}), ("notes_delete", {"id": "x"})],
)
async def test_write_tool_with_a_read_only_token_gets_403_insufficient_scope(
    client: httpx.AsyncClient, tool: str, arguments: dict[str, str]
) -> None:
    read_only = await obtain_grant(client, write=False)
    assert read_only.scope == "mcp"
    response = await post_mcp(
        client, "tools/call", {"name": tool, "arguments": arguments}, token=read_only.access_token
    )
    assert response.status_code == 403
    assert challenge(response) == {
        "error": "insufficient_scope",
        "error_description": f"the tool {tool} needs the scope mcp:write",
        "resource_metadata": PRM,
        "scope": ALL_SCOPES,
    }


async def test_read_only_token_may_use_read_tools(client: httpx.AsyncClient) -> None:
    read_only = await obtain_grant(client, write=False)
    listed = structured(await call_tool(client, read_only.access_token, "notes_list"))
    assert listed == {"notes": [], "count": 0}


# -- Host, Origin, CORS ----------------------------------------------------------------------------


async def test_foreign_origin_gets_403(client: httpx.AsyncClient, grant: Grant) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
    response = await client.post(
        "/mcp",
        json=body,
        headers={
            "Authorization": f"Bearer {grant.access_token}",
            "Accept": BOTH,
            "MCP-Protocol-Version": LEGACY,
            "Origin": "https://evil.example",
        },
    )
    assert response.status_code == 403
    error = response.json()
    assert error["jsonrpc"] == "2.0"
    assert error["id"] is None
    assert "https://evil.example" in error["error"]["message"]
    assert "ALLOWED_ORIGINS" in error["error"]["message"]
    assert "access-control-allow-origin" not in response.headers


async def test_preflight_from_a_foreign_origin_gets_no_cors_allowance(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options(
        "/mcp",
        headers={
            "Origin": "https://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 403
    assert not [h for h in response.headers if h.startswith("access-control-")]


@pytest.fixture
async def app_with_origin(backend: Backend, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(backend, tmp_path, allowed_origins=[APP_ORIGIN])
    async with running_app(settings) as application:
        yield application


async def test_preflight_from_an_allowed_origin_echoes_it_with_mcp_headers(
    app_with_origin: FastAPI,
) -> None:
    async with client_for(app_with_origin) as web:
        response = await web.options(
            "/mcp",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, mcp-protocol-version",
            },
        )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "access-control-allow-credentials" not in response.headers
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert {
        "authorization",
        "content-type",
        "mcp-protocol-version",
        "mcp-session-id",
        "last-event-id",
    } <= allowed
    methods = {m.strip() for m in response.headers["access-control-allow-methods"].split(",")}
    assert {"GET", "POST", "DELETE"} <= methods


async def test_allowed_origin_can_read_the_challenge_of_a_401(app_with_origin: FastAPI) -> None:
    async with client_for(app_with_origin) as web:
        response = await web.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}},
            headers={"Origin": APP_ORIGIN, "Accept": BOTH},
        )
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"www-authenticate", "mcp-session-id"} <= exposed
    assert "Origin" in response.headers.get_list("vary")
    assert challenge(response) == {"resource_metadata": PRM, "scope": ALL_SCOPES}


async def test_allowed_origin_calls_tools_with_cors_headers(
    app_with_origin: FastAPI, client: httpx.AsyncClient, grant: Grant
) -> None:
    async with client_for(app_with_origin) as web:
        body = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}},
        }
        response = await web.post(
            "/mcp",
            json=body,
            headers={
                "Origin": APP_ORIGIN,
                "Authorization": f"Bearer {grant.access_token}",
                "Accept": "application/json",
                "MCP-Protocol-Version": LEGACY,
            },
        )
    assert response.headers["access-control-allow-origin"] == APP_ORIGIN
    assert structured(result(response))["email"] == grant.email


async def test_wrong_host_gets_421_before_authentication(
    client: httpx.AsyncClient, grant: Grant
) -> None:
    for token in (None, grant.access_token):
        body = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}
        headers = {"Host": "evil.example", "Accept": BOTH}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await client.post("/mcp", json=body, headers=headers)
        assert response.status_code == 421
        assert "this host name is not served here" in response.json()["error"]["message"]
        assert "www-authenticate" not in response.headers


# -- the body --------------------------------------------------------------------------------------

ONE_MIB = 1024 * 1024


def _oversized() -> bytes:
    prefix = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"'
    return prefix + b"x" * ONE_MIB + b'"}}'


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": BOTH,
        "Content-Type": "application/json",
        "MCP-Protocol-Version": LEGACY,
    }


async def test_body_over_one_mib_gets_413(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await client.post("/mcp", content=_oversized(), headers=_headers(grant.access_token))
    assert response.status_code == 413
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "request body too large"},
    }


async def test_streamed_body_over_one_mib_without_a_length_gets_413(
    client: httpx.AsyncClient, grant: Grant
) -> None:
    body = _oversized()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await client.post("/mcp", content=chunks(), headers=_headers(grant.access_token))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == -32600


@pytest.mark.parametrize(
    "body",
    [b'{"jsonrpc": "2.0", "id": 1,', b"[" * 100_000],
    ids=["truncated", "nested-too-deep"],
)
async def test_malformed_json_gets_a_jsonrpc_parse_error(
    client: httpx.AsyncClient, grant: Grant, body: bytes
) -> None:
    response = await client.post("/mcp", content=body, headers=_headers(grant.access_token))
    assert response.status_code == 400
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32700, "message": "Parse error"},
    }


# -- the endpoint's shape --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_only_post_is_served_and_other_methods_say_so_after_authentication(
    client: httpx.AsyncClient, grant: Grant, method: str
) -> None:
    # Streamable HTTP: on a GET "the server MUST either return Content-Type: text/event-stream
    # ... or else return HTTP 405 Method Not Allowed". A stateless server has nothing to send
    # on a standalone stream, and DELETE ends a session it never made.
    headers = {"Accept": BOTH, "MCP-Protocol-Version": LEGACY}
    anonymous = await client.request(method, "/mcp", headers=headers)
    assert anonymous.status_code == 401
    assert challenge(anonymous) == {"resource_metadata": PRM, "scope": ALL_SCOPES}
    headers["Authorization"] = f"Bearer {grant.access_token}"
    response = await client.request(method, "/mcp", headers=headers)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32600, "message": "Method Not Allowed: this endpoint takes POST"},
    }


@pytest.mark.parametrize("version", [MODERN, LEGACY])
async def test_trailing_slash_answers_without_a_redirect(
    client: httpx.AsyncClient, grant: Grant, version: str
) -> None:
    response = await post_mcp(
        client,
        "tools/call",
        {"name": "whoami", "arguments": {}},
        token=grant.access_token,
        path="/mcp/",
        version=version,
    )
    assert response.status_code == 200
    assert "location" not in response.headers
    assert structured(result(response))["email"] == grant.email


async def test_accept_without_event_stream_gets_plain_json(
    client: httpx.AsyncClient, grant: Grant
) -> None:
    response = await post_mcp(
        client,
        "tools/call",
        {"name": "whoami", "arguments": {}},
        token=grant.access_token,
        version=LEGACY,
        accept="application/json",
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert structured(result(response))["email"] == grant.email


async def test_a_request_that_can_receive_progress_gets_sse(
    client: httpx.AsyncClient, grant: Grant
) -> None:
    response = await post_mcp(
        client,
        "tools/call",
        {"name": "whoami", "arguments": {}, "_meta": {"progressToken": "p-1"}},
        token=grant.access_token,
        version=LEGACY,
        accept=BOTH,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith("event: message")
    assert structured(result(response))["email"] == grant.email


async def test_a_plain_request_gets_json_even_when_sse_is_accepted(
    client: httpx.AsyncClient, grant: Grant
) -> None:
    # Streamable HTTP: the server "MUST either return Content-Type: text/event-stream ... or
    # Content-Type: application/json"; with nothing to stream, one JSON object is cheaper.
    response = await post_mcp(
        client,
        "tools/call",
        {"name": "whoami", "arguments": {}},
        token=grant.access_token,
        version=LEGACY,
        accept=BOTH,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert structured(result(response))["email"] == grant.email
