"""Fixtures for the /mcp tests: one live Gatehouse with MCP_TOOLSETS=conformance per session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.conftest import Backend, LiveServer, _upgrade, free_port, start_server
from tests.mcp.support import Grant, obtain_grant


@dataclass(frozen=True)
class ConformanceServer:
    server: LiveServer
    grant: Grant  # alice's, with mcp:write
    other: Grant  # bob's
    proxy_port: int  # where tests may put a proxy Gatehouse accepts Host/Origin for

    @property
    def mcp_url(self) -> str:
        return f"{self.server.url}/mcp"


@pytest.fixture(scope="session")
async def conformance_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[ConformanceServer]:
    """SQLite only: these tests exercise the MCP surface, not the database."""
    tmp = tmp_path_factory.mktemp("conformance")
    url = f"sqlite+aiosqlite:///{tmp / 'gatehouse.db'}"
    await asyncio.to_thread(_upgrade, url)
    proxy_port = free_port()
    # The conformance suite's DNS-rebinding probes send Host/Origin for the address it was
    # given (the proxy's), which the proxy passes through: Gatehouse is told to accept it.
    proxied = [f"127.0.0.1:{proxy_port}", f"localhost:{proxy_port}"]
    server = start_server(
        Backend("sqlite", url),
        tmp,
        MCP_TOOLSETS="conformance",
        ALLOWED_HOSTS=",".join(proxied),
        ALLOWED_ORIGINS=",".join(f"http://{h}" for h in proxied),
    )
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as web:
            grant = await obtain_grant(web)
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as web:
            other = await obtain_grant(web)
        yield ConformanceServer(server, grant, other, proxy_port)
    finally:
        server.stop()
