"""Two server processes on one PostgreSQL database behave as one: authorize through one, call
tools and refresh through the other, revoke on the first and the second refuses within 5 s.

Both replicas are configured alike, as behind a round-robin proxy: one PUBLIC_URL, which the
proxy would forward as the Host header (here the test sends it itself)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Backend, LiveServer, start_server
from tests.mcp.support import (
    ALL_SCOPES,
    call_tool,
    challenge,
    metadata_url,
    obtain_grant,
    post_mcp,
    structured,
)
from tests.oauth.flow import refresh

PUBLIC_HOST = "gatehouse.test"
PUBLIC_URL = f"http://{PUBLIC_HOST}"


@dataclass
class Replicas:
    a: LiveServer
    b: LiveServer


@pytest.fixture(scope="module")
def replicas(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    if not backend.is_postgres:
        pytest.skip("replicas share a PostgreSQL database; this runs on the PostgreSQL backend")
    tmp = tmp_path_factory.mktemp("replicas")
    a = start_server(backend, tmp, PUBLIC_URL=PUBLIC_URL)
    try:
        b = start_server(backend, tmp, PUBLIC_URL=PUBLIC_URL)
    except Exception:
        a.stop()
        raise
    yield Replicas(a, b)
    b.stop()
    a.stop()


def through(server: LiveServer) -> httpx.AsyncClient:
    """A client that reaches one replica directly, with the public Host a proxy would forward."""
    port = server.env["PORT"]
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers={"Host": PUBLIC_HOST}, timeout=30
    )


async def test_replicas_answer_each_others_clients(replicas: Replicas) -> None:
    async with through(replicas.a) as a, through(replicas.b) as b:
        grant = await obtain_grant(a)

        me = structured(await call_tool(b, grant.access_token, "whoami"))
        assert me["email"] == grant.email
        assert me["client_id"] == grant.client_id
        assert me["scopes"] == ["mcp", "mcp:write"]

        created = structured(await call_tool(b, grant.access_token, "notes_create", {"title": "b"}))
        listed = structured(await call_tool(a, grant.access_token, "notes_list"))
        assert [note["id"] for note in listed["notes"]] == [created["id"]]


async def test_refresh_through_the_other_replica_then_revocation_reaches_it(
    replicas: Replicas,
) -> None:
    async with through(replicas.a) as a, through(replicas.b) as b:
        grant = await obtain_grant(a)

        refreshed = await refresh(b, grant.client_id, grant.refresh_token)
        assert refreshed.status_code == 200, refreshed.text
        tokens = refreshed.json()
        assert tokens["refresh_token"] != grant.refresh_token
        access = tokens["access_token"]
        assert structured(await call_tool(b, access, "whoami"))["email"] == grant.email

        revoked = await a.post(
            "/revoke", data={"token": tokens["refresh_token"], "client_id": grant.client_id}
        )
        assert revoked.status_code == 200

        # A bound on the wait (the design's 5 s, plus slack), not a speed assertion.
        deadline = time.monotonic() + 6.0
        while True:
            response = await post_mcp(
                b, "tools/call", {"name": "whoami", "arguments": {}}, token=access
            )
            if response.status_code != 200 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert response.status_code == 401
        assert challenge(response) == {
            "error": "invalid_token",
            "error_description": "the grant was revoked or the user disabled",
            "resource_metadata": metadata_url(PUBLIC_URL),
            "scope": ALL_SCOPES,
        }
        # The rotated refresh token is dead on the other replica too.
        again = await refresh(b, grant.client_id, tokens["refresh_token"])
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
