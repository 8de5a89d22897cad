"""Fixtures for the /mcp tests: a live Gatehouse with MCP_TOOLSETS=conformance per session, and one
in this process (`lean_app`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from tests.conftest import (
    Backend,
    LiveServer,
    _upgrade,
    free_port,
    lifespan_in_own_task,
    make_settings,
    start_server,
)
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


@pytest.fixture(scope="session")
async def lean_app(
    backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[FastAPI]:
    """An app in this process with every built-in tool, the conformance fixtures included."""
    settings = make_settings(backend, tmp_path_factory.mktemp("lean"), mcp_toolsets=["conformance"])
    application = create_app(settings)
    async with lifespan_in_own_task(application):
        yield application


@pytest.fixture
async def lean_client(lean_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=lean_app, client=("127.0.0.1", 50000))
    base = lean_app.state.settings.public_url
    async with httpx.AsyncClient(transport=transport, base_url=base) as c:
        yield c
