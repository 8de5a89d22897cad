"""Sending one /mcp request through the lean path and through the SDK's own handler.

`both` sends it as the app serves (app/mcp/modern.py, with app/mcp/lean.py for the requests it
takes), then again with `modern.answer` turned off, so the SDK's session manager
(`handle_modern_request`, `serve_one`) answers it; the two answers are compared whole: status,
headers (all but Date) and body.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.mcp import modern
from app.mcp.endpoint import McpEndpoint
from app.mcp.front import McpFirst

Answer = tuple[int, list[tuple[str, str]], bytes]
Headers = dict[str, str] | list[tuple[str, str]]


async def send(
    client: httpx.AsyncClient, body: dict[str, Any] | bytes, headers: Headers, path: str = "/mcp"
) -> Answer:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await client.post(path, content=content, headers=headers)
    kept = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "date"]
    return response.status_code, kept, response.content


async def both(
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
    body: dict[str, Any] | bytes,
    headers: Headers,
    path: str = "/mcp",
) -> tuple[Answer, Answer]:
    """(the app's answer, the SDK's answer)."""
    lean = await send(client, body, headers, path)
    with monkeypatch.context() as patched:

        async def sdk_only(*_args: Any, **_kwargs: Any) -> bool:
            return False

        patched.setattr(modern, "answer", sdk_only)
        sdk = await send(client, body, headers, path)
    return lean, sdk


def endpoint_of(app: FastAPI) -> McpEndpoint:
    """The app's /mcp endpoint (held by its McpFirst middleware)."""
    for middleware in app.user_middleware:
        if middleware.cls is McpFirst:
            endpoint = middleware.kwargs["endpoint"]
            assert isinstance(endpoint, McpEndpoint)
            return endpoint
    raise AssertionError("no McpFirst middleware")
