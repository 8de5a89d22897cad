"""Which session manager answers: SSE when the request can receive notifications, else JSON."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.datastructures import Headers

from app.mcp.endpoint import _answers_as_stream

BOTH = "application/json, text/event-stream"


def _call(meta: dict[str, Any] | None = None, method: str = "tools/call") -> dict[str, Any]:
    params: dict[str, Any] = {"name": "whoami", "arguments": {}}
    if meta is not None:
        params["_meta"] = meta
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


@pytest.mark.parametrize(
    ("accept", "version", "message", "stream"),
    [
        ("application/json", "2026-07-28", _call(), False),
        ("application/json", "2025-06-18", _call(), False),
        (BOTH, "2025-06-18", _call(), False),
        (BOTH, "2025-11-25", _call({"progressToken": 1}), True),
        (BOTH, None, _call(), False),
        ("text/event-stream", "2025-06-18", _call(), True),
        (BOTH, "2025-06-18", None, True),
        (BOTH, "2026-07-28", _call(), False),
        (BOTH, "2026-07-28", _call({"progressToken": "p1"}), True),
        (BOTH, "2026-07-28", _call({"io.modelcontextprotocol/logLevel": "info"}), True),
        (BOTH, "2026-07-28", _call(method="subscriptions/listen"), True),
        (BOTH, "2026-07-28", [_call(), _call({"progressToken": 2})], True),
        ("*/*", "2026-07-28", _call({"progressToken": 3}), True),
    ],
)
def test_stream_only_when_the_request_can_receive_notifications(
    accept: str, version: str | None, message: Any, stream: bool
) -> None:
    headers = {"accept": accept}
    if version:
        headers["mcp-protocol-version"] = version
    assert _answers_as_stream(Headers(headers), message) is stream


@pytest.mark.parametrize(
    ("version", "name", "stream"),
    [("2026-07-28", "slow", True), ("2025-11-25", "slow", True), ("2026-07-28", "whoami", False)],
)
def test_a_streaming_tool_always_answers_on_a_stream(version: str, name: str, stream: bool) -> None:
    headers = Headers({"accept": BOTH, "mcp-protocol-version": version})
    message = _call()
    message["params"]["name"] = name
    assert _answers_as_stream(headers, message, frozenset({"slow"})) is stream
