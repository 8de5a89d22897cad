"""The 2026-07-28 JSON path (app/mcp/modern.py) answers byte for byte what the SDK's own
`handle_modern_request` answers: status, headers and body, for every built-in tool, list and
error a client can cause. Each request is sent twice: through the app as it serves (the lean
path), and with the lean path turned off so the SDK's session manager answers it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from app.mcp import modern
from tests.mcp.equivalence import Headers, both, send
from tests.mcp.support import MODERN, Grant, mcp_request, obtain_grant


@pytest.fixture
async def grant(client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(client, write=True)


def _call(name: str, arguments: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    return "tools/call", {"name": name, "arguments": arguments or {}}


CASES: dict[str, tuple[str, dict[str, Any] | None]] = {
    "tools/list": ("tools/list", None),
    "whoami": _call("whoami"),
    "notes_list": _call("notes_list"),
    "notes_search": _call("notes_search", {"query": "nothing matches this"}),
    "notes_search, a missing argument": _call("notes_search"),
    "notes_search, an argument of the wrong type": _call("notes_search", {"query": 7}),
    "notes_create, an empty title": _call("notes_create", {"title": "", "body": "x"}),
    "notes_delete, an id that is not there": _call(
        "notes_delete", {"note_id": "00000000-0000-0000-0000-000000000000"}
    ),
    "an unknown tool": _call("no_such_tool"),
    "tools/call, arguments a list": ("tools/call", {"name": "whoami", "arguments": [1, 2]}),
    "tools/call, arguments a string": ("tools/call", {"name": "whoami", "arguments": "x"}),
    "prompts/get, arguments a list": (
        "prompts/get",
        {"name": "summarize_notes", "arguments": ["x"]},
    ),
    "prompts/list": ("prompts/list", None),
    "prompts/get, an unknown prompt": ("prompts/get", {"name": "no_such_prompt"}),
    "resources/list": ("resources/list", None),
    "resources/templates/list": ("resources/templates/list", None),
    "resources/read, an unknown note": (
        "resources/read",
        {"uri": "notes://00000000-0000-0000-0000-000000000000"},
    ),
    "ping": ("ping", None),
    "an unknown method": ("no/such/method", None),
    "completion/complete": (
        "completion/complete",
        {
            "ref": {"type": "ref/prompt", "name": "summarize_notes"},
            "argument": {"name": "x", "value": ""},
        },
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_the_same_bytes_as_the_sdk(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    method, params = CASES[case]
    body, headers = mcp_request(method, params, token=grant.access_token, version=MODERN)
    lean, sdk = await both(client, monkeypatch, body, headers)
    assert lean == sdk
    assert lean[2].startswith(b'{"jsonrpc":"2.0","id":1,'), lean


async def test_the_lean_path_answers_the_common_case(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a test that cannot fail: the lean path must actually be the one answering."""
    answered: list[bool] = []
    real = modern.answer

    async def counting(*args: Any, **kwargs: Any) -> bool:
        answered.append(await real(*args, **kwargs))
        return answered[-1]

    monkeypatch.setattr(modern, "answer", counting)
    body, headers = mcp_request(*_call("whoami"), token=grant.access_token, version=MODERN)
    status, _, content = await send(client, body, headers)
    assert status == 200, content
    assert answered == [True]


def _refusals(token: str) -> dict[str, tuple[dict[str, Any] | bytes, Headers]]:
    """Requests at the edges of the ladder (a security review's list): each must get exactly
    the SDK's answer, whichever path gives it."""
    body, headers = mcp_request(*_call("whoami"), token=token, version=MODERN)
    listed = list(headers.items())
    search, search_headers = mcp_request(
        *_call("notes_search", {"query": "x"}), token=token, version=MODERN
    )
    no_meta = {**body, "params": {"name": "whoami", "arguments": {}}}
    meta = {**body["params"]["_meta"], "io.modelcontextprotocol/protocolVersion": "2025-06-18"}
    initialize = {"protocolVersion": MODERN, "capabilities": {}, "clientInfo": {"name": "x"}}
    return {
        "a mismatched Mcp-Name": (body, {**headers, "Mcp-Name": "notes_list"}),
        "no Mcp-Method": (body, {k: v for k, v in headers.items() if k != "Mcp-Method"}),
        "no _meta envelope": (no_meta, headers),
        "an unsupported version": (body, {**headers, "MCP-Protocol-Version": "2099-01-01"}),
        "a version that is no date": (body, {**headers, "MCP-Protocol-Version": "garbage"}),
        "a notification": ({k: v for k, v in body.items() if k != "id"}, headers),
        "a batch": (json.dumps([body]).encode(), headers),
        "a text/plain content type": (body, {**headers, "Content-Type": "text/plain"}),
        "a JSON content type with a charset": (
            body,
            {**headers, "Content-Type": "application/json; charset=utf-8"},
        ),
        "an upper-case content type": (body, {**headers, "Content-Type": "APPLICATION/JSON"}),
        "application/jsonx": (body, {**headers, "Content-Type": "application/jsonx"}),
        "an Accept without JSON": (body, {**headers, "Accept": "text/event-stream"}),
        "Accept */*": (body, {**headers, "Accept": "*/*"}),
        "Accept JSON only": (body, {**headers, "Accept": "application/json"}),
        "no jsonrpc member": ({k: v for k, v in body.items() if k != "jsonrpc"}, headers),
        "jsonrpc 1.0": ({**body, "jsonrpc": "1.0"}, headers),
        "a method that is a number": ({**body, "method": 5}, headers),
        "a response-shaped body": ({"jsonrpc": "2.0", "id": 1, "result": {}}, headers),
        "an extra member": ({**body, "extra": 1}, headers),
        "a huge integer id": (json.dumps({**body, "id": 10**40}).encode(), headers),
        "a negative id": ({**body, "id": -5}, headers),
        "a string id": ({**body, "id": "abc"}, headers),
        "an empty string id": ({**body, "id": ""}, headers),
        "params a list": ({**body, "params": [1, 2]}, headers),
        "params null": ({**body, "params": None}, headers),
        "an Mcp-Param header": (body, {**headers, "Mcp-Param-Query": "x"}),
        "a matching Mcp-Param header": (search, {**search_headers, "Mcp-Param-Query": "x"}),
        "a mismatched Mcp-Param header": (search, {**search_headers, "Mcp-Param-Query": "y"}),
        "two version headers": (body, [*listed, ("MCP-Protocol-Version", "2025-06-18")]),
        "two Mcp-Method headers": (body, [*listed, ("Mcp-Method", "tools/call")]),
        "a _meta version that differs from the header": (
            {**body, "params": {**body["params"], "_meta": meta}},
            headers,
        ),
        "initialize at 2026-07-28": mcp_request(
            "initialize", initialize, token=token, version=MODERN
        ),
        "subscriptions/listen with JSON only": (
            mcp_request("subscriptions/listen", {}, token=token, version=MODERN)[0],
            {**headers, "Mcp-Method": "subscriptions/listen", "Accept": "application/json"},
        ),
    }


@pytest.mark.parametrize("case", list(_refusals("token")))
async def test_what_the_sdk_refuses_is_refused_alike(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    body, headers = _refusals(grant.access_token)[case]
    lean, sdk = await both(client, monkeypatch, body, headers)
    assert lean == sdk
    assert dict(lean[1]).get("cache-control", "").startswith("no-store"), lean


async def test_the_same_bytes_on_the_trailing_slash_path(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch
) -> None:
    body, headers = mcp_request(*_call("whoami"), token=grant.access_token, version=MODERN)
    lean, sdk = await both(client, monkeypatch, body, headers, path="/mcp/")
    assert lean == sdk
    assert lean[0] == 200, lean
