"""The lean `tools/call` and `tools/list` (app/mcp/lean.py) answer byte for byte what the SDK's
own handler answers, for every built-in tool (the conformance fixtures included), their argument
errors, the envelopes a client may send, and a registry that changes while serving.

Each request goes through the app as it serves and then through the SDK alone (see
tests/mcp/equivalence.py). Two values differ by design and are compared by meaning instead: a
sealed `requestState` (a fresh nonce and timestamps every time: both must unseal to the same
claims) and what notes_create makes (a new note's id and time).
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mcp.shared.inbound import encode_header_value

from tests.mcp.equivalence import Answer, both, endpoint_of
from tests.mcp.support import MODERN, Grant, mcp_request, obtain_grant

CAPABLE = {"sampling": {}, "elicitation": {}, "roots": {}}


@pytest.fixture
async def grant(lean_client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(lean_client, write=True)


def _calls() -> dict[str, tuple[str, dict[str, Any] | None]]:
    """A call of every tool with good arguments, and each kind of bad ones."""
    good: dict[str, dict[str, Any]] = {
        "notes_create": {"title": "a note", "body": "its text"},
        "notes_search": {"query": "nothing matches this"},
        "test_sampling": {"prompt": "hi"},
        "test_elicitation": {"message": "who are you?"},
        "json_schema_2020_12_tool": {"name": "x", "email": "x@example.com"},
        "test_x_mcp_header": {"region": "eu"},
    }
    plain = [
        "whoami",
        "notes_list",
        "notes_delete",
        "test_tool_with_logging",
        "test_tool_with_progress",
        "test_logging_tool",
        "test_streaming_elicitation",
        "test_elicitation_sep1034_defaults",
        "test_elicitation_sep1330_enums",
        "test_error_handling",
        "test_missing_capability",
        "test_simple_text",
        "test_image_content",
        "test_audio_content",
        "test_embedded_resource",
        "test_multiple_content_types",
        *(f"test_input_required_result_{n}" for n in INPUT_REQUIRED),
    ]
    calls: dict[str, tuple[str, dict[str, Any] | None]] = {n: (n, {}) for n in plain}
    calls |= {n: (n, args) for n, args in good.items()}
    calls |= {
        "arguments absent": ("whoami", None),
        "notes_list, a limit out of range": ("notes_list", {"limit": 0}),
        "notes_list, a limit as a JSON string": ("notes_list", {"limit": "5"}),
        "notes_list, a limit that is no number": ("notes_list", {"limit": "x"}),
        "notes_list, a float limit": ("notes_list", {"limit": 2.5}),
        "notes_list, an argument it does not take": ("notes_list", {"colour": "red"}),
        "notes_search, a missing argument": ("notes_search", {}),
        "notes_search, a number for a string": ("notes_search", {"query": 7}),
        "notes_search, too short": ("notes_search", {"query": ""}),
        "notes_search, too long": ("notes_search", {"query": "x" * 201}),
        "notes_search, null": ("notes_search", {"query": None}),
        "notes_create, an empty title": ("notes_create", {"title": ""}),
        "notes_create, a list for a title": ("notes_create", {"title": ["a"]}),
        "notes_delete, an id that is not there": ("notes_delete", {"id": "nope"}),
        "notes_delete, ids not a list": ("notes_delete", {"ids": "a"}),
        "notes_delete, too many ids": ("notes_delete", {"ids": ["a"] * 101}),
        "test_sampling, no prompt": ("test_sampling", {}),
        "json_schema_2020_12_tool, a wrong type": ("json_schema_2020_12_tool", {"name": 1}),
        "an unknown tool": ("no_such_tool", {}),
        "a tool name with odd characters": ("ünïcode tool", {}),
    }
    return calls


INPUT_REQUIRED = (
    "elicitation",
    "sampling",
    "list_roots",
    "request_state",
    "tampered_state",
    "multiple_inputs",
    "multi_round",
    "capabilities",
)
CALLS = _calls()
NOTE_VALUES = re.compile(
    rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|\d{4}-\d\d-\d\dT[\d:.+]+"
)


def _request(
    grant: Grant,
    method: str,
    params: dict[str, Any] | None,
    *,
    capabilities: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    body, headers = mcp_request(method, params, token=grant.access_token, version=MODERN)
    if params is not None and "arguments" in params and params["arguments"] is None:
        body["params"]["arguments"] = None
    if capabilities is not None:
        meta = body["params"]["_meta"]
        meta["io.modelcontextprotocol/clientCapabilities"] = capabilities
    if params and params.get("name") == "test_x_mcp_header" and params.get("arguments"):
        headers["Mcp-Param-Region"] = params["arguments"]["region"]
    if "Mcp-Name" in headers:
        # A non-ASCII name travels base64-encoded (SEP-2243), as the SDK's client sends it.
        headers["Mcp-Name"] = encode_header_value(headers["Mcp-Name"])
    return body, headers


def _unsealed(app: FastAPI, answer: Answer) -> Answer:
    """`answer` with a sealed requestState replaced by the claims it carries that do not change
    from one seal to the next (everything but its times and the principal's salted tag)."""
    status, headers, body = answer
    parsed = json.loads(body)
    state = parsed.get("result", {}).get("requestState")
    if not isinstance(state, str):
        return answer
    boundary = endpoint_of(app).server.server._lowlevel_server.middleware[0]
    claims = json.loads(boundary._security.codec.unseal(state))
    assert claims["p"], claims  # bound to the user and client
    kept = {k: v for k, v in claims.items() if k not in ("iat", "exp", "p")}
    parsed["result"]["requestState"] = kept
    rest = [(k, v) for k, v in headers if k != "content-length"]
    return status, rest, json.dumps(parsed).encode()


def _same(app: FastAPI, lean: Answer, sdk: Answer) -> None:
    lean, sdk = _unsealed(app, lean), _unsealed(app, sdk)
    if NOTE_VALUES.search(lean[2]):  # what notes_create made: compared by shape
        lean = (lean[0], lean[1], NOTE_VALUES.sub(b"<made>", lean[2]))
        sdk = (sdk[0], sdk[1], NOTE_VALUES.sub(b"<made>", sdk[2]))
    assert lean == sdk


@pytest.mark.parametrize("case", CALLS)
@pytest.mark.parametrize("capable", [False, True], ids=["no capabilities", "capable client"])
async def test_every_tool_answers_as_the_sdk(
    lean_app: FastAPI,
    lean_client: httpx.AsyncClient,
    grant: Grant,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    capable: bool,
) -> None:
    name, arguments = CALLS[case]
    params: dict[str, Any] = {"name": name, "arguments": arguments}
    body, headers = _request(grant, "tools/call", params, capabilities=CAPABLE if capable else None)
    lean, sdk = await both(lean_client, monkeypatch, body, headers)
    _same(lean_app, lean, sdk)
    assert lean[2].startswith(b'{"jsonrpc":"2.0","id":1,'), lean


def _envelopes() -> dict[str, tuple[str, dict[str, Any]]]:
    """Params a client may send with a call or a list, each with exactly the SDK's answer."""
    meta = mcp_request("tools/list", None, token="x", version=MODERN)[0]["params"]["_meta"]
    caps = "io.modelcontextprotocol/clientCapabilities"
    info = "io.modelcontextprotocol/clientInfo"
    whoami = {"name": "whoami", "arguments": {}}
    return {
        "tools/list": ("tools/list", {}),
        "tools/list, a cursor": ("tools/list", {"cursor": "abc"}),
        "tools/list, a cursor that is a number": ("tools/list", {"cursor": 5}),
        "tools/list, an extra param": ("tools/list", {"colour": "red"}),
        "tools/list, capabilities that are no object": (
            "tools/list",
            {"_meta": {**meta, caps: {"sampling": 5}}},
        ),
        "tools/call, capabilities that are no object": (
            "tools/call",
            {**whoami, "_meta": {**meta, caps: {"sampling": 5}}},
        ),
        "tools/call, a client info without a version": (
            "tools/call",
            {**whoami, "_meta": {**meta, info: {"name": "x"}}},
        ),
        "tools/call, no client info": (
            "tools/call",
            {**whoami, "_meta": {k: v for k, v in meta.items() if k != info}},
        ),
        "tools/call, an extension's _meta key": (
            "tools/call",
            {**whoami, "_meta": {**meta, "com.example/trace": [1, 1.0, True, None]}},
        ),
        "tools/call, a log level that is no level": (
            "tools/call",
            {**whoami, "_meta": {**meta, "io.modelcontextprotocol/logLevel": "loud"}},
        ),
        "tools/call, an extra param": ("tools/call", {**whoami, "colour": "red"}),
        "tools/call, inputResponses without requestState": (
            "tools/call",
            {**whoami, "inputResponses": {"x": {"action": "cancel"}}},
        ),
        "tools/call, a forged requestState": ("tools/call", {**whoami, "requestState": "v1.x"}),
        "tools/call, a requestState that is no string": (
            "tools/call",
            {**whoami, "requestState": 5},
        ),
        "tools/call, arguments null": ("tools/call", {"name": "whoami", "arguments": None}),
        "tools/call, no name": ("tools/call", {"arguments": {}}),
    }


ENVELOPES = _envelopes()


@pytest.mark.parametrize("case", ENVELOPES)
async def test_every_envelope_answers_as_the_sdk(
    lean_app: FastAPI,
    lean_client: httpx.AsyncClient,
    grant: Grant,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
) -> None:
    method, params = ENVELOPES[case]
    body, headers = _request(grant, method, {k: v for k, v in params.items() if k != "_meta"})
    if "_meta" in params:
        body["params"]["_meta"] = params["_meta"]
    for _ in range(2):  # the second time, after the kernel has seen the envelope once
        lean, sdk = await both(lean_client, monkeypatch, body, headers)
        _same(lean_app, lean, sdk)


async def test_a_second_round_answers_as_the_sdk(
    lean_app: FastAPI, lean_client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """input_required, then the client's answers with the sealed requestState it was given."""
    params = {"name": "test_input_required_result_elicitation", "arguments": {}}
    body, headers = _request(grant, "tools/call", params, capabilities=CAPABLE)
    first = json.loads((await both(lean_client, monkeypatch, body, headers))[0][2])
    answer = {"action": "accept", "content": {"name": "Ada"}}
    body["params"]["inputResponses"] = {"user_name": answer}
    body["params"]["requestState"] = first["result"]["requestState"]
    lean, sdk = await both(lean_client, monkeypatch, body, headers)
    _same(lean_app, lean, sdk)
    assert b"Hello, Ada!" in lean[2], lean
