"""The split-out `mcp` role checking revocation through the issuer's /introspect (RFC 7662).

A real `auth` process is the issuer; the `mcp` role is an app of its own that reaches it through
a small forwarding HTTP server, which counts the introspection requests and can play an issuer
outage. The credentials come from `gatehouse clients add-resource-server`, as an operator gets
them. What is pinned: a revoked grant or a disabled user is refused within 5 s; a grant in steady
use is not introspected on every request, nor for each of its tokens; an unreachable issuer gives
503 (never a yes older than the bound, never a 401 that would make the client throw its tokens
away); credentials the issuer rejects stop the start-up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.auth.models import User
from app.config import Settings
from app.db import utcnow
from tests.conftest import (
    Backend,
    LiveServer,
    client_for,
    make_settings,
    running_app,
    start_server,
)
from tests.helpers import db_write
from tests.local_server import serve_asgi
from tests.mcp.support import (
    ALL_SCOPES,
    Grant,
    call_tool,
    challenge,
    metadata_url,
    obtain_grant,
    post_mcp,
    structured,
)
from tests.oauth.flow import refresh
from tests.oauth.test_resource_server_introspection import add_resource_server

BOUND = 5.0  # the design's bound on how long a revoked grant may still be honoured


class Forwarder:
    """Forwards every request to the issuer; counts /introspect calls; can refuse them all."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.introspections = 0
        self.down = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        if request.url.path == "/introspect":
            self.introspections += 1
        if self.down:
            await Response("issuer down", status_code=502)(scope, receive, send)
            return
        headers = [
            (k, v) for k, v in request.headers.items() if k not in ("host", "content-length")
        ]
        async with httpx.AsyncClient(base_url=self.upstream) as http:
            upstream = await http.request(
                request.method, request.url.path, headers=headers, content=await request.body()
            )
        answer = Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type"),
        )
        await answer(scope, receive, send)


@dataclass
class Split:
    auth: LiveServer
    forwarder: Forwarder
    mcp: FastAPI
    credentials: dict[str, str]
    var: Path


@pytest.fixture(scope="module")
def issuer(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_server(backend, tmp_path_factory.mktemp("issuer"), GATEHOUSE_ROLE="auth")
    yield server
    server.stop()


@pytest.fixture(scope="module")
async def split(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory, issuer: LiveServer
) -> AsyncIterator[Split]:
    var = tmp_path_factory.mktemp("mcp")
    credentials = await asyncio.to_thread(add_resource_server, backend, var)
    forwarder = Forwarder(issuer.url)
    with serve_asgi(forwarder) as internal:
        settings = mcp_settings(backend, var, issuer.url, internal, credentials)
        async with running_app(settings) as mcp:
            yield Split(issuer, forwarder, mcp, credentials, var)


def mcp_settings(
    backend: Backend, var: Path, issuer: str, internal: str, credentials: dict[str, str]
) -> Settings:
    return make_settings(
        backend,
        var,
        gatehouse_role="mcp",
        public_url=issuer,  # one origin for both roles, as behind the compose proxy
        auth_issuer_url=issuer,
        auth_issuer_internal_url=internal,
        auth_introspection_client_id=credentials["client_id"],
        auth_introspection_client_secret=credentials["client_secret"],
    )


async def grant_at(issuer: LiveServer) -> Grant:
    async with httpx.AsyncClient(base_url=issuer.url, timeout=30) as client:
        return await obtain_grant(client)


async def whoami(split: Split, token: str) -> httpx.Response:
    async with client_for(split.mcp) as client:
        return await post_mcp(
            client, "tools/call", {"name": "whoami", "arguments": {}}, token=token
        )


async def first_refusal(split: Split, token: str, *, within: float) -> tuple[httpx.Response, float]:
    """Call whoami until it stops answering 200; the refusal and how long it took."""
    started = time.monotonic()
    while True:
        response = await whoami(split, token)
        waited = time.monotonic() - started
        if response.status_code != 200 or waited > within:
            return response, waited
        await asyncio.sleep(0.2)


def assert_revoked(response: httpx.Response, public_url: str) -> None:
    assert response.status_code == 401, response.text
    assert challenge(response) == {
        "error": "invalid_token",
        "error_description": "the grant was revoked or the user disabled",
        "resource_metadata": metadata_url(public_url),
        "scope": ALL_SCOPES,
    }


async def test_a_grant_in_use_is_introspected_once_not_per_request(split: Split) -> None:
    grant = await grant_at(split.auth)
    async with httpx.AsyncClient(base_url=split.auth.url) as auth:
        refreshed = await refresh(auth, grant.client_id, grant.refresh_token)
    assert refreshed.status_code == 200, refreshed.text
    successor = refreshed.json()["access_token"]
    before = split.forwarder.introspections
    async with client_for(split.mcp) as client:
        for token in [grant.access_token, successor] * 3:
            me = structured(await call_tool(client, token, "whoami"))
            assert me["email"] == grant.email
    assert split.forwarder.introspections - before == 1


async def test_a_revoked_grant_is_refused_within_5_seconds(split: Split) -> None:
    grant = await grant_at(split.auth)
    assert (await whoami(split, grant.access_token)).status_code == 200
    async with httpx.AsyncClient(base_url=split.auth.url) as auth:
        revoked = await auth.post(
            "/revoke", data={"token": grant.refresh_token, "client_id": grant.client_id}
        )
    assert revoked.status_code == 200
    response, _ = await first_refusal(split, grant.access_token, within=BOUND + 1)
    assert_revoked(response, split.auth.url)


async def test_a_disabled_user_is_refused_within_5_seconds(split: Split) -> None:
    grant = await grant_at(split.auth)
    assert (await whoami(split, grant.access_token)).status_code == 200
    await db_write(
        split.mcp, update(User).where(User.email == grant.email).values(disabled_at=utcnow())
    )
    response, _ = await first_refusal(split, grant.access_token, within=BOUND + 1)
    assert_revoked(response, split.auth.url)


async def test_an_unreachable_issuer_gives_503_never_a_stale_yes(split: Split) -> None:
    grant = await grant_at(split.auth)
    assert (await whoami(split, grant.access_token)).status_code == 200
    split.forwarder.down = True
    try:
        # The answer just given stays good for a few seconds; then the token cannot be
        # confirmed, and the request is turned away as unavailable rather than let in.
        response, waited = await first_refusal(split, grant.access_token, within=BOUND + 1)
        assert waited <= BOUND + 1
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "5"
        assert "www-authenticate" not in response.headers
        error = response.json()["error"]
        assert error["code"] == -32603
        assert "cannot confirm this token" in error["message"]
    finally:
        split.forwarder.down = False
    # Back up: after the short pause that spares a failing issuer, the same token works again.
    deadline = time.monotonic() + 3
    while (response := await whoami(split, grant.access_token)).status_code != 200:
        assert time.monotonic() < deadline, response.text
        await asyncio.sleep(0.2)


async def test_credentials_the_issuer_rejects_stop_the_start_up(
    backend: Backend, tmp_path: Path, issuer: LiveServer
) -> None:
    bad = {"client_id": "gh_rs_unknown", "client_secret": "gh_cs_wrong"}
    settings = mcp_settings(backend, tmp_path, issuer.url, issuer.url, bad)
    with pytest.raises(RuntimeError, match="add-resource-server"):
        async with running_app(settings):
            pass
