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


async def _send(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, headers: dict[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post("/mcp", content=content, headers=headers)
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "date"]
    return response.status_code, kept, response.content


async def _both(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any] | bytes,
    headers: dict[str, str],
) -> tuple[tuple[int, list[tuple[str, str]], bytes], tuple[int, list[tuple[str, str]], bytes]]:
    lean = await _send(client, body, headers)
    with monkeypatch.context() as patched:

        async def sdk_only(*_args: Any) -> bool:
            return False

        patched.setattr(modern, "answer", sdk_only)
        sdk = await _send(client, body, headers)
    return lean, sdk


@pytest.mark.parametrize("case", CASES)
async def test_the_same_bytes_as_the_sdk(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    method, params = CASES[case]
    body, headers = mcp_request(method, params, token=grant.access_token, version=MODERN)
    lean, sdk = await _both(client, monkeypatch, body, headers)
    assert lean == sdk
    assert lean[2].startswith(b'{"jsonrpc":"2.0","id":1,'), lean


async def test_the_lean_path_answers_the_common_case(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a test that cannot fail: the lean path must actually be the one answering."""
    answered: list[bool] = []
    real = modern.answer

    async def counting(*args: Any) -> bool:
        answered.append(await real(*args))
        return answered[-1]

    monkeypatch.setattr(modern, "answer", counting)
    body, headers = mcp_request(*_call("whoami"), token=grant.access_token, version=MODERN)
    status, _, content = await _send(client, body, headers)
    assert status == 200, content
    assert answered == [True]


def _refusals(token: str) -> dict[str, tuple[dict[str, Any] | bytes, dict[str, str]]]:
    body, headers = mcp_request(*_call("whoami"), token=token, version=MODERN)
    no_meta = {**body, "params": {"name": "whoami", "arguments": {}}}
    return {
        "a mismatched Mcp-Name": (body, {**headers, "Mcp-Name": "notes_list"}),
        "no Mcp-Method": (body, {k: v for k, v in headers.items() if k != "Mcp-Method"}),
        "no _meta envelope": (no_meta, headers),
        "an unsupported version": (body, {**headers, "MCP-Protocol-Version": "2099-01-01"}),
        "a notification": ({k: v for k, v in body.items() if k != "id"}, headers),
        "a batch": (json.dumps([body]).encode(), headers),
        "a text/plain content type": (body, {**headers, "Content-Type": "text/plain"}),
        "an Accept without JSON": (body, {**headers, "Accept": "text/event-stream"}),
        "no jsonrpc member": ({k: v for k, v in body.items() if k != "jsonrpc"}, headers),
        "an Mcp-Param header": (body, {**headers, "Mcp-Param-Query": "x"}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "a mismatched Mcp-Name",
        "no Mcp-Method",
        "no _meta envelope",
        "an unsupported version",
        "a notification",
        "a batch",
        "a text/plain content type",
        "an Accept without JSON",
        "no jsonrpc member",
        "an Mcp-Param header",
    ],
)
async def test_what_the_sdk_refuses_is_refused_alike(
    client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    body, headers = _refusals(grant.access_token)[case]
    lean, sdk = await _both(client, monkeypatch, body, headers)
    assert lean == sdk
