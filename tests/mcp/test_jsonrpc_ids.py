"""Every request id MCP does not allow gets -32600 with `id: null`, not a silent 202.

MCP, Basic protocol: "Requests MUST include a string or integer ID. Unlike base JSON-RPC, the ID
MUST NOT be null." JSON-RPC 2.0 §5: when the id cannot be determined, the error's id "MUST be
Null".
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.mcp.support import mcp_request, obtain_grant, reply


@pytest.fixture(scope="module")
async def token(app: Any) -> str:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url=app.state.settings.public_url) as c:
        return (await obtain_grant(c)).access_token


@pytest.mark.parametrize("bad_id", [1.5, 2.0, None, True, False, [1], {"n": 1}])
async def test_a_request_with_a_malformed_id_is_an_invalid_request(
    client: httpx.AsyncClient, token: str, bad_id: Any
) -> None:
    body, headers = mcp_request("tools/list", token=token)
    body["id"] = bad_id
    response = await client.post("/mcp", json=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": -32600,
            "message": "Invalid Request: the id must be a string or an integer",
        },
    }


@pytest.mark.parametrize("good_id", [7, "abc", 0, -3])
async def test_string_and_integer_ids_are_answered_with_the_same_id(
    client: httpx.AsyncClient, token: str, good_id: Any
) -> None:
    body, headers = mcp_request("tools/list", token=token)
    body["id"] = good_id
    response = await client.post("/mcp", json=body, headers=headers)
    assert reply(response)["id"] == good_id


async def test_a_notification_without_an_id_is_still_accepted(
    client: httpx.AsyncClient, token: str
) -> None:
    body, headers = mcp_request("notifications/initialized", token=token)
    del body["id"]
    response = await client.post("/mcp", json=body, headers=headers)
    assert response.status_code == 202
