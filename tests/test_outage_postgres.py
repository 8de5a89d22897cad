"""A database outage, for real: a private PostgreSQL cluster is stopped under two live servers
(role `all`, and role `mcp` on the shared database's revocation feed).

While it is down every endpoint answers 503 with Retry-After and the body its clients understand
(OAuth `temporarily_unavailable` JSON, a JSON-RPC error at /mcp, a page for people), never a 500,
never invalid_grant / invalid_client / 401; the known signing keys keep /jwks.json answering.
When it is back, everything works again without a restart, and the refresh token issued just
before the outage still refreshes (no refresh answered 200 is lost).
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import Backend, LiveServer, _upgrade, start_server
from tests.helpers import PASSWORD, csrf_from, sign_up
from tests.mcp.support import mcp_request, obtain_grant, result
from tests.oauth.flow import REDIRECT_URI, Authorization, refresh
from tests.private_postgres import PrivateCluster

KEY_CACHE_SECONDS = 30  # app/oauth/tokens.py: the published keys are re-read after this


@pytest.fixture(scope="module")
def cluster() -> Iterator[PrivateCluster]:
    pg = PrivateCluster()
    try:
        pg.init()
        pg.start()
        subprocess.run(
            [*pg._as, str(pg.bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port),
             "-U", "postgres", "gatehouse"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        _upgrade(pg.url("gatehouse"))
        yield pg
    finally:
        pg.remove()


def assert_unavailable(response: httpx.Response, kind: str) -> None:
    where = f"{response.request.method} {response.request.url.path}"
    assert response.status_code == 503, (where, response.status_code, response.text)
    assert int(response.headers["retry-after"]) >= 1, where
    if kind == "oauth":
        assert response.json()["error"] == "temporarily_unavailable", where
        assert response.headers["cache-control"] == "no-store", where
    elif kind == "mcp":
        body = response.json()
        assert body["jsonrpc"] == "2.0", where
        assert body["id"] is None, where
        assert body["error"]["code"] == -32603, where
        assert "www-authenticate" not in response.headers, where
    elif kind == "json":
        assert response.headers["content-type"] == "application/json", where
    else:
        assert response.headers["content-type"].startswith("text/html"), where
        assert "Temporarily unavailable" in response.text, where


def start_mcp_role(backend: Backend, tmp: Path, issuer: LiveServer) -> LiveServer:
    return start_server(
        backend,
        tmp,
        GATEHOUSE_ROLE="mcp",
        PUBLIC_URL=issuer.url,  # one public URL for both roles, as behind compose's proxy
        AUTH_ISSUER_URL=issuer.url,
    )


def direct(server: LiveServer) -> str:
    return f"http://127.0.0.1:{server.env['PORT']}"


async def mcp_answers(client: httpx.AsyncClient, server: LiveServer, token: str) -> httpx.Response:
    # The Host is the public one (the auth server's), as a proxy in front of both would keep it.
    body, headers = mcp_request("tools/list", token=token)
    headers["Host"] = urlsplit(server.url).netloc
    return await client.post(f"{direct(server)}/mcp", json=body, headers=headers)


async def test_an_outage_is_503_everywhere_and_heals_without_a_restart(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    backend = Backend("postgresql", cluster.url("gatehouse"))
    servers = [start_server(backend, tmp_path)]
    try:
        auth = servers[0]
        servers.append(resource := start_mcp_role(backend, tmp_path, auth))
        async with httpx.AsyncClient(base_url=auth.url, timeout=30) as web:
            grant = await obtain_grant(web)
            renewed = await refresh(web, grant.client_id, grant.refresh_token)
            assert renewed.status_code == 200, renewed.text
            tokens = renewed.json()  # answered 200 just before the outage: must not be lost
            for server in (auth, resource):
                result(await mcp_answers(web, server, tokens["access_token"]))
            keys = (await web.get("/jwks.json")).json()
            keys_read_at = time.monotonic()
            async with httpx.AsyncClient(base_url=auth.url) as stranger:
                form = csrf_from((await stranger.get("/sign-in")).text)
                sign_in_form = (stranger.cookies["gh_csrf"], form)

            cluster.stop()
            await asyncio.sleep(5)  # past the revocation feed's 4.5 s: it must ask the database

            await during_the_outage(web, auth, resource, grant.client_id, tokens, sign_in_form)
            # The key cache has expired by now; the keys known before keep being published.
            await asyncio.sleep(max(0.0, KEY_CACHE_SECONDS + 1 - (time.monotonic() - keys_read_at)))
            published = await web.get("/jwks.json")
            assert published.status_code == 200, published.text
            assert published.json() == keys
            ready = await web.get("/ready")
            assert_unavailable(ready, "json")
            assert ready.json() == {"status": "unavailable", "database": "unreachable"}

            cluster.start()
            await after_the_outage(web, auth, resource, grant.client_id, tokens)
    finally:
        for server in servers:
            server.stop()
    for server in servers:
        log = server.log.read_text()
        assert "Traceback" not in log, log[-4000:]
        assert "unhandled" not in log, log[-4000:]


async def during_the_outage(
    web: httpx.AsyncClient,
    auth: LiveServer,
    resource: LiveServer,
    client_id: str,
    tokens: dict[str, str],
    sign_in_form: tuple[str, str],
) -> None:
    assert_unavailable(await refresh(web, client_id, tokens["refresh_token"]), "oauth")
    basic = base64.b64encode(f"{client_id}:not-a-secret".encode()).decode()
    code_exchange = {
        "grant_type": "authorization_code",
        "code": "gh_ac_whatever",
        "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 43,
    }
    assert_unavailable(
        await web.post("/token", data=code_exchange, headers={"Authorization": f"Basic {basic}"}),
        "oauth",
    )
    registration = {"redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none"}
    assert_unavailable(await web.post("/register", json=registration), "oauth")
    revocation = {"token": tokens["refresh_token"], "client_id": client_id}
    assert_unavailable(await web.post("/revoke", data=revocation), "oauth")
    introspection = {"token": tokens["access_token"], "client_id": client_id}
    assert_unavailable(await web.post("/introspect", data=introspection), "oauth")
    for server in (auth, resource):
        assert_unavailable(await mcp_answers(web, server, tokens["access_token"]), "mcp")
    # Pages: a signed-in browser's /authorize and /account, and a sign-in.
    assert_unavailable(await web.get(Authorization(client_id).url()), "page")
    assert_unavailable(await web.get("/account"), "page")
    async with httpx.AsyncClient(base_url=auth.url, timeout=30) as stranger:
        assert_unavailable(await stranger.get(Authorization(client_id).url()), "page")
        cookie, token = sign_in_form
        stranger.cookies.set("gh_csrf", cookie)
        form = {"email": "someone@example.com", "password": PASSWORD, "csrf_token": token}
        assert_unavailable(await stranger.post("/sign-in", data=form), "page")


async def after_the_outage(
    web: httpx.AsyncClient,
    auth: LiveServer,
    resource: LiveServer,
    client_id: str,
    tokens: dict[str, str],
) -> None:
    deadline = time.monotonic() + 30
    while (await web.get("/ready")).status_code != 200:
        assert time.monotonic() < deadline, "not ready again 30 s after the database came back"
        await asyncio.sleep(0.5)
    renewed = await refresh(web, client_id, tokens["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    access = renewed.json()["access_token"]
    for server in (auth, resource):
        listed = result(await mcp_answers(web, server, access))
        assert listed["tools"], listed
    assert (await web.get("/account")).status_code == 200
    async with httpx.AsyncClient(base_url=auth.url, timeout=30) as newcomer:
        await sign_up(newcomer)
