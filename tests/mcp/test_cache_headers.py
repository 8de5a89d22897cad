"""Every /mcp answer says Cache-Control: no-store and Vary: Authorization (claude.ai caches tool
lists), and the 2026-07-28 lists say cacheScope "private" (SEP-2549)."""

from __future__ import annotations

import httpx
import pytest

from tests.mcp.support import BOTH, LEGACY, MODERN, Grant, obtain_grant, post_mcp, reply, result

PUBLIC_URL = "http://127.0.0.1:8000"  # make_settings' PUBLIC_URL


@pytest.fixture
async def grant(client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(client, write=False)


def assert_private(response: httpx.Response) -> None:
    directives = {d.strip() for d in response.headers["cache-control"].split(",")}
    assert "no-store" in directives, response.headers
    assert len(response.headers.get_list("cache-control")) == 1, response.headers
    varies = {v.strip().lower() for h in response.headers.get_list("vary") for v in h.split(",")}
    assert "authorization" in varies, response.headers


async def test_a_json_answer(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await post_mcp(client, "tools/list", token=grant.access_token)
    assert response.headers["content-type"].startswith("application/json")
    assert "tools" in result(response)
    assert response.headers["cache-control"] == "no-store"
    assert_private(response)


async def test_an_sse_answer_keeps_no_transform(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await post_mcp(
        client,
        "tools/list",
        {"_meta": {"progressToken": 1}},
        token=grant.access_token,
        version=LEGACY,
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "tools" in result(response)
    assert response.headers["cache-control"] == "no-store, no-transform"
    assert_private(response)


async def test_a_202_for_a_notification(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await client.post(
        "/mcp",
        json={"jsonrpc": "2.0", "method": "notifications/initialized"},
        headers={
            "Authorization": f"Bearer {grant.access_token}",
            "Accept": BOTH,
            "MCP-Protocol-Version": LEGACY,
        },
    )
    assert response.status_code == 202, response.text
    assert_private(response)


async def test_an_sdk_refusal(client: httpx.AsyncClient, grant: Grant) -> None:
    # The transport's own 406: Accept names neither JSON nor SSE.
    response = await post_mcp(client, "tools/list", token=grant.access_token, accept="text/html")
    assert response.status_code in (400, 406), response.text
    assert_private(response)


@pytest.mark.parametrize(
    ("content", "status"), [(b"{not json", 400), (b" " * (1024 * 1024 + 1), 413)]
)
async def test_our_own_refusals(
    client: httpx.AsyncClient, grant: Grant, content: bytes, status: int
) -> None:
    response = await client.post(
        "/mcp",
        content=content,
        headers={
            "Authorization": f"Bearer {grant.access_token}",
            "Content-Type": "application/json",
            "Accept": BOTH,
        },
    )
    assert response.status_code == status
    assert "error" in response.json()
    assert_private(response)


async def test_the_401_challenge(client: httpx.AsyncClient) -> None:
    response = await post_mcp(client, "tools/list", token=None)
    assert response.status_code == 401
    assert_private(response)


async def test_the_403_insufficient_scope(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await post_mcp(
        client, "tools/call", {"name": "notes_create", "arguments": {}}, token=grant.access_token
    )
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert_private(response)


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
async def test_the_405(client: httpx.AsyncClient, grant: Grant, method: str) -> None:
    response = await client.request(
        method, "/mcp", headers={"Authorization": f"Bearer {grant.access_token}"}
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert_private(response)


async def test_an_unknown_method_without_a_token_is_challenged(client: httpx.AsyncClient) -> None:
    response = await client.request("PUT", "/mcp")
    assert response.status_code == 401
    assert_private(response)


async def test_a_wrong_host(client: httpx.AsyncClient, grant: Grant) -> None:
    response = await post_mcp(
        client, "tools/list", token=grant.access_token, path="http://evil.example/mcp"
    )
    assert response.status_code == 421
    assert_private(response)


@pytest.mark.parametrize(
    "method", ["tools/list", "prompts/list", "resources/list", "resources/templates/list"]
)
async def test_lists_say_cache_scope_private(
    client: httpx.AsyncClient, grant: Grant, method: str
) -> None:
    listed = result(await post_mcp(client, method, token=grant.access_token, version=MODERN))
    assert listed["cacheScope"] == "private"
    assert listed["ttlMs"] == 0


async def test_legacy_lists_carry_no_cache_fields(client: httpx.AsyncClient, grant: Grant) -> None:
    # The handshake generations have no such fields; the SDK sieves them off that wire.
    message = reply(await post_mcp(client, "tools/list", token=grant.access_token, version=LEGACY))
    assert "cacheScope" not in message["result"]
