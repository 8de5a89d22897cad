"""The official MCP SDK client, end to end: 401 → discovery → registration → browser sign-in and
consent → tokens → tools on both protocol generations → refresh → step-up."""

from __future__ import annotations

import time
from typing import Any

import httpx
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import LiveServer
from tests.helpers import sign_up
from tests.mcp.sdk_harness import BrowserApprover, MemoryStorage, http_client, oauth_provider


async def _account(live_server: LiveServer) -> str:
    async with httpx.AsyncClient(base_url=live_server.url) as web:
        return await sign_up(web)


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result
    assert result.structured_content is not None
    return dict(result.structured_content)


async def test_sdk_client_connects_through_oauth_and_calls_tools_on_both_generations(
    live_server: LiveServer, browser: Any
) -> None:
    email = await _account(live_server)
    context = await browser.new_context()
    approver = BrowserApprover(context, email)
    storage = MemoryStorage()
    provider = oauth_provider(f"{live_server.url}/mcp", approver, storage, scope=None)

    async with http_client(provider) as http:
        async with Client(
            streamable_http_client(f"{live_server.url}/mcp", http_client=http), mode="auto"
        ) as client:
            tools = await client.list_tools()
            names = {tool.name for tool in tools.tools}
            assert {"whoami", "notes_create", "notes_list", "notes_search", "notes_delete"} <= names
            me = _structured(await client.call_tool("whoami", {}))
            assert me["email"] == email
            assert me["client_name"] == "SDK test client"
            assert me["scopes"] == ["mcp", "mcp:write"]
            assert me["protocol_version"] == "2026-07-28"
            created = _structured(await client.call_tool("notes_create", {"title": "modern"}))
            assert created["title"] == "modern"

        assert approver.consents_seen == 1
        assert storage.tokens is not None
        assert storage.tokens.refresh_token

        # The same tokens over the handshake generation (initialize, 2025-11-25).
        async with Client(
            streamable_http_client(f"{live_server.url}/mcp", http_client=http), mode="legacy"
        ) as client:
            me = _structured(await client.call_tool("whoami", {}))
            assert me["email"] == email
            assert me["protocol_version"] in ("2025-06-18", "2025-11-25")
            listed = _structured(await client.call_tool("notes_list", {}))
            assert [n["title"] for n in listed["notes"]] == ["modern"]

        # Forced expiry: the provider refreshes before the next request and carries on.
        old = storage.tokens
        provider.context.token_expiry_time = time.time() - 1
        async with Client(
            streamable_http_client(f"{live_server.url}/mcp", http_client=http), mode="auto"
        ) as client:
            me = _structured(await client.call_tool("whoami", {}))
            assert me["email"] == email
        assert storage.tokens is not None
        assert storage.tokens.access_token != old.access_token
        assert storage.tokens.refresh_token != old.refresh_token
        assert approver.consents_seen == 1  # refreshed, not re-authorized
    await context.close()


async def test_read_only_client_steps_up_through_consent_for_a_write_tool(
    live_server: LiveServer, browser: Any
) -> None:
    email = await _account(live_server)
    context = await browser.new_context()
    approver = BrowserApprover(context, email, grant_write=False)
    storage = MemoryStorage()
    provider = oauth_provider(f"{live_server.url}/mcp", approver, storage, scope="mcp")

    async with http_client(provider) as http:
        async with Client(
            streamable_http_client(f"{live_server.url}/mcp", http_client=http), mode="auto"
        ) as client:
            me = _structured(await client.call_tool("whoami", {}))
            assert me["scopes"] == ["mcp"]
            assert storage.tokens is not None
            assert storage.tokens.scope == "mcp"
            first = storage.tokens.access_token

            # The write tool answers 403 insufficient_scope; the SDK asks again for
            # "mcp mcp:write", the person approves this time, and the call goes through.
            approver.grant_write = True
            created = _structured(await client.call_tool("notes_create", {"title": "stepped"}))
            assert created["title"] == "stepped"
            assert storage.tokens.scope == "mcp mcp:write"
            assert storage.tokens.access_token != first
    assert approver.consents_seen == 2
    assert "scope=mcp+mcp%3Awrite" in approver.authorize_urls[-1]
    await context.close()
