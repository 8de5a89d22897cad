"""Which browser origins /mcp answers: any origin on a deployed (https) server, since /mcp takes
bearer tokens only; loopback and plain-http servers keep DNS-rebinding protection; ALLOWED_ORIGINS
narrows either; a refused origin gets a JSON-RPC error naming it and the setting."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import Backend, make_settings, running_app
from tests.mcp.support import BOTH

DEPLOYED = "https://mcp.example.com"
PAGE = "https://any-browser-client.example"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {}}


@pytest.fixture
async def deployed(backend: Backend, tmp_path: Path) -> AsyncIterator[FastAPI]:
    settings = make_settings(backend, tmp_path, public_url=DEPLOYED)
    async with running_app(settings) as application:
        yield application


def web(application: FastAPI, base_url: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=application, client=("10.80.0.1", 50000))
    return httpx.AsyncClient(transport=transport, base_url=base_url)


def preflight(origin: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
    }


async def test_a_deployed_server_answers_a_preflight_from_any_origin(deployed: FastAPI) -> None:
    async with web(deployed, DEPLOYED) as c:
        response = await c.options("/mcp", headers=preflight(PAGE))
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers


async def test_a_deployed_server_lets_any_origin_read_the_challenge(deployed: FastAPI) -> None:
    async with web(deployed, DEPLOYED) as c:
        response = await c.post("/mcp", json=PING, headers={"Origin": PAGE, "Accept": BOTH})
    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == "*"
    assert "www-authenticate" in response.headers["access-control-expose-headers"].lower()


async def test_a_deployed_server_still_checks_the_host(deployed: FastAPI) -> None:
    # A rebound name (evil.example pointed at our address) is refused by Host, whatever Origin.
    async with web(deployed, "https://evil.example") as c:
        response = await c.post("/mcp", json=PING, headers={"Origin": "https://evil.example"})
    assert response.status_code == 421
    assert "ALLOWED_HOSTS" in response.json()["error"]["message"]


async def test_allowed_origins_narrows_a_deployed_server(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, public_url=DEPLOYED, allowed_origins=[PAGE])
    async with running_app(settings) as application, web(application, DEPLOYED) as c:
        ok = await c.options("/mcp", headers=preflight(PAGE))
        assert ok.status_code == 204
        assert ok.headers["access-control-allow-origin"] == PAGE
        other = "https://other.example"
        refused = await c.post("/mcp", json=PING, headers={"Origin": other, "Accept": BOTH})
    assert_refused(refused, other)


@pytest.mark.parametrize("public_url", ["http://127.0.0.1:8000", "http://gatehouse.lan:8000"])
async def test_a_loopback_or_plain_http_server_refuses_foreign_origins(
    backend: Backend, tmp_path: Path, public_url: str
) -> None:
    settings = make_settings(backend, tmp_path, public_url=public_url)
    async with running_app(settings) as application, web(application, public_url) as c:
        refused = await c.post("/mcp", json=PING, headers={"Origin": PAGE, "Accept": BOTH})
        assert_refused(refused, PAGE)
        own = await c.post("/mcp", json=PING, headers={"Origin": public_url, "Accept": BOTH})
        assert own.status_code == 401


def assert_refused(response: httpx.Response, origin: str) -> None:
    assert response.status_code == 403
    body: dict[str, Any] = response.json()
    assert body["jsonrpc"] == "2.0"
    assert body["id"] is None
    assert origin in body["error"]["message"]
    assert "ALLOWED_ORIGINS" in body["error"]["message"]
    assert response.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in response.headers
