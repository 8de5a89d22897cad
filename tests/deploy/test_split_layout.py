"""The compose `split` layout without containers: one `auth` process and two `mcp` processes on
one PostgreSQL, in production mode, behind a small round-robin reverse proxy that plays Caddy
(deploy/Caddyfile's routes). The official MCP SDK client connects through the proxy's one URL
and works, and both MCP replicas serve it."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from starlette.types import Message, Receive, Scope, Send

from tests.conftest import Backend, LiveServer, free_port, start_server
from tests.helpers import sign_up
from tests.mcp.sdk_harness import BrowserApprover, MemoryStorage, http_client, oauth_provider
from tests.mcp.support import call_tool, challenge, obtain_grant, post_mcp, structured
from tests.oauth.test_resource_server_introspection import add_resource_server

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)


def routes_to_mcp(path: str) -> bool:
    """deploy/Caddyfile's @mcp matcher."""
    return (
        path in ("/mcp", "/mcp/")
        or path == "/.well-known/oauth-protected-resource"
        or (path.startswith("/.well-known/oauth-protected-resource/"))
    )


class RoundRobinProxy:
    """An ASGI reverse proxy: keeps Host, sets X-Forwarded-*, streams both ways."""

    def __init__(self, *, auth: str, mcp: list[str]) -> None:
        self.auth = auth
        self.mcp = mcp
        self._turn = itertools.cycle(range(len(mcp)))
        self.served: Counter[str] = Counter()
        self._client: httpx.AsyncClient | None = None

    def upstream(self, path: str) -> str:
        if routes_to_mcp(path):
            index = next(self._turn)
            self.served[f"mcp{index}"] += 1
            return self.mcp[index]
        self.served["auth"] += 1
        return self.auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._forward(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # A proxy keeps no cookies: each browser's go through untouched.
                no_cookies = CookieJar(DefaultCookiePolicy(allowed_domains=[]))
                self._client = httpx.AsyncClient(timeout=httpx.Timeout(60.0), cookies=no_cookies)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._client is not None:
                    await self._client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._client is not None
        target = self.upstream(scope["path"]) + scope["raw_path"].decode()
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode()
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in HOP_BY_HOP]
        headers += [
            (b"x-forwarded-for", scope["client"][0].encode()),
            (b"x-forwarded-proto", b"http"),
        ]

        async def body() -> AsyncIterator[bytes]:
            while True:
                message: Message = await receive()
                if message["type"] != "http.request":
                    return
                yield message.get("body", b"")
                if not message.get("more_body", False):
                    return

        request = self._client.build_request(
            scope["method"], target, headers=headers, content=body()
        )
        response = await self._client.send(request, stream=True)
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [
                        (k, v) for k, v in response.headers.raw if k.lower() not in HOP_BY_HOP
                    ],
                }
            )
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await response.aclose()


class ProxyThread:
    def __init__(self, app: RoundRobinProxy, port: int) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ProxyThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the proxy did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Layout:
    public: str
    proxy: RoundRobinProxy
    mcp: list[LiveServer]


@pytest.fixture(scope="module")
def split(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Layout]:
    if not backend.is_postgres:
        pytest.skip("the split layout shares one PostgreSQL between its processes")
    tmp_path = tmp_path_factory.mktemp("split")
    proxy_port = free_port()
    public = f"http://127.0.0.1:{proxy_port}"  # one URL for both roles, as in compose
    production = {"GATEHOUSE_ENV": "production", "PUBLIC_URL": public}
    servers: list[LiveServer] = []
    try:
        mail = {"SMTP_URL": "smtp://127.0.0.1:1"}  # required in production; never reached here
        servers.append(start_server(backend, tmp_path, GATEHOUSE_ROLE="auth", **mail, **production))
        auth_direct = f"http://127.0.0.1:{servers[0].env['PORT']}"
        introspection = add_resource_server(backend, tmp_path)
        # One replica reaches the issuer through the proxy and learns of revocations from the
        # shared database; the other reaches it directly (compose's
        # AUTH_ISSUER_INTERNAL_URL=http://auth:8000) and asks its /introspect.
        for internal, credentials in (
            ("", {}),
            (
                auth_direct,
                {
                    "AUTH_INTROSPECTION_CLIENT_ID": introspection["client_id"],
                    "AUTH_INTROSPECTION_CLIENT_SECRET": introspection["client_secret"],
                },
            ),
        ):
            servers.append(
                start_server(
                    backend,
                    tmp_path,
                    GATEHOUSE_ROLE="mcp",
                    AUTH_ISSUER_URL=public,
                    AUTH_ISSUER_INTERNAL_URL=internal,
                    **production,
                    **credentials,
                )
            )
        upstreams = [f"http://127.0.0.1:{s.env['PORT']}" for s in servers]
        proxy = RoundRobinProxy(auth=upstreams[0], mcp=upstreams[1:])
        with ProxyThread(proxy, proxy_port):
            yield Layout(public, proxy, servers[1:])
    finally:
        for server in servers:
            server.stop()


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


async def test_discovery_through_the_proxy_names_one_issuer_for_both_roles(
    split: Layout,
) -> None:
    public, proxy = split.public, split.proxy
    before = proxy.served.copy()
    async with httpx.AsyncClient(base_url=public) as web:
        for _ in range(2):  # each replica answers the same
            resource = (await web.get("/.well-known/oauth-protected-resource/mcp")).json()
            assert resource["resource"] == f"{public}/mcp"
            assert resource["authorization_servers"] == [public]
        issuer = (await web.get("/.well-known/oauth-authorization-server")).json()
        assert issuer["issuer"] == public
        challenge = await web.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert challenge.status_code == 401
        assert (
            f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"'
            in (challenge.headers["www-authenticate"])
        )
    served = proxy.served - before
    assert served["mcp0"] >= 1
    assert served["mcp1"] >= 1


async def test_the_sdk_client_works_through_the_proxy_on_both_mcp_replicas(
    split: Layout, browser: Any
) -> None:
    public, proxy = split.public, split.proxy
    before = proxy.served.copy()
    async with httpx.AsyncClient(base_url=public) as web:
        email = await sign_up(web)
    context = await browser.new_context()
    approver = BrowserApprover(context, email)
    storage = MemoryStorage()
    provider = oauth_provider(f"{public}/mcp", approver, storage, scope=None)

    async with http_client(provider) as http:
        async with Client(
            streamable_http_client(f"{public}/mcp", http_client=http), mode="auto"
        ) as client:
            tools = await client.list_tools()
            assert "whoami" in {tool.name for tool in tools.tools}
            for _ in range(3):  # round robin: every replica verifies the same token
                me = _structured(await client.call_tool("whoami", {}))
                assert me["email"] == email
                assert me["scopes"] == ["mcp", "mcp:write"]
            created = _structured(await client.call_tool("notes_create", {"title": "split"}))
            assert created["title"] == "split"
            listed = _structured(await client.call_tool("notes_list", {}))
            assert [n["title"] for n in listed["notes"]] == ["split"]

        async with Client(
            streamable_http_client(f"{public}/mcp", http_client=http), mode="legacy"
        ) as client:
            me = _structured(await client.call_tool("whoami", {}))
            assert me["email"] == email
    await context.close()
    assert approver.consents_seen == 1
    served = proxy.served - before
    assert served["auth"] > 0
    assert served["mcp0"] >= 3
    assert served["mcp1"] >= 3


async def test_each_replica_refuses_a_revoked_grant_within_5_seconds(split: Layout) -> None:
    """Replica 0 by polling the shared database, replica 1 by asking the issuer's /introspect,
    as each one's start-up report says."""
    reports = [server.log.read_text() for server in split.mcp]
    assert "revocation:  polls the database" in reports[0]
    assert "revocation:  the issuer's introspection endpoint, as gh_rs_" in reports[1]
    host = urlsplit(split.public).netloc
    async with httpx.AsyncClient(base_url=split.public, timeout=30) as web:
        grant = await obtain_grant(web)
    replicas = [
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.env['PORT']}", headers={"Host": host})
        for server in split.mcp
    ]
    try:
        for replica in replicas:
            me = structured(await call_tool(replica, grant.access_token, "whoami"))
            assert me["email"] == grant.email
        async with httpx.AsyncClient(base_url=split.public) as web:
            revoked = await web.post(
                "/revoke", data={"token": grant.refresh_token, "client_id": grant.client_id}
            )
        assert revoked.status_code == 200
        refused_after = time.monotonic() + 5.0 + 1.0  # the design's bound, plus slack
        for replica in replicas:
            while True:
                response = await post_mcp(
                    replica,
                    "tools/call",
                    {"name": "whoami", "arguments": {}},
                    token=grant.access_token,
                )
                if response.status_code != 200 or time.monotonic() > refused_after:
                    break
                await asyncio.sleep(0.2)
            assert response.status_code == 401, response.text
            assert challenge(response)["error_description"] == (
                "the grant was revoked or the user disabled"
            )
    finally:
        for replica in replicas:
            await replica.aclose()
