"""Params that do not fit the method's schema are the client's fault: JSON-RPC -32602 "Invalid
request parameters" (the SDK's own answer, no pydantic text), at both protocol generations, with
nothing logged at WARNING or above. Never -32603 with a trace id and frames in the error log."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.mcp.support import LEGACY, MODERN, Grant, mcp_request, obtain_grant

INVALID_PARAMS = {"code": -32602, "message": "Invalid request parameters", "data": ""}

BAD: dict[str, tuple[str, dict[str, Any]]] = {
    "tools/call, arguments a list": ("tools/call", {"name": "whoami", "arguments": [1, 2]}),
    "tools/call, arguments a string": ("tools/call", {"name": "whoami", "arguments": "x"}),
    "tools/call, arguments a number": ("tools/call", {"name": "notes_list", "arguments": 5}),
    "prompts/get, arguments a list": (
        "prompts/get",
        {"name": "summarize_notes", "arguments": ["x"]},
    ),
    "completion/complete, argument a list": (
        "completion/complete",
        {"ref": {"type": "ref/prompt", "name": "summarize_notes"}, "argument": [1]},
    ),
}


@pytest.fixture
async def grant(client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(client, write=True)


@pytest.mark.parametrize("case", BAD)
@pytest.mark.parametrize("version", [MODERN, LEGACY])
async def test_params_of_the_wrong_shape_are_32602_and_not_logged(
    client: httpx.AsyncClient,
    grant: Grant,
    caplog: pytest.LogCaptureFixture,
    version: str,
    case: str,
) -> None:
    method, params = BAD[case]
    body, headers = mcp_request(method, params, token=grant.access_token, version=version)
    with caplog.at_level(logging.DEBUG):
        response = await client.post("/mcp", json=body, headers=headers)
    # 2026-07-28 carries a JSON-RPC error's class in the HTTP status; the handshake
    # generation answers every JSON-RPC message with 200.
    assert response.status_code == (400 if version == MODERN else 200), response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"jsonrpc": "2.0", "id": 1, "error": INVALID_PARAMS}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
