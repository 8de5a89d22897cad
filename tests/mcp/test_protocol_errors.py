"""The protocol errors of GatehouseMCP, in-process with the SDK client: a crash is -32603 with a
trace id, logged with the exception's type and frames but never its message or the arguments
(a ValidationError of our own making included: only the client's params are -32602); unknown
names are -32602 naming them."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from mcp.client import Client
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types import EmptyResult, SetLevelRequestParams
from pydantic import BaseModel

from app.mcp.server import GatehouseMCP

SECRET = "the-users-secret-4242"


def _server() -> GatehouseMCP:
    server = GatehouseMCP()

    async def crashes(text: str) -> str:
        raise RuntimeError(f"database said no about {text}")

    async def prompt_crashes(topic: str) -> str:
        raise KeyError(topic)

    server.tool(name="crashes", title="Crashes", description="Always fails", read_only=True)(
        crashes
    )

    async def resource_crashes(key: str) -> str:
        raise OSError(f"cannot open {key}")

    server.prompt(name="broken", title="Broken", description="Always fails")(prompt_crashes)
    server.resource("broken://{key}", name="broken", title="Broken", description="Fails")(
        resource_crashes
    )
    return server


@pytest.mark.parametrize(
    ("method", "arguments"),
    [("tool", {"text": SECRET}), ("prompt", {"topic": SECRET}), ("resource", {"key": SECRET})],
)
async def test_a_crash_is_32603_with_a_trace_id_and_no_user_data(
    method: str, arguments: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="gatehouse.mcp")
    async with Client(_server().server) as client:
        calls = {
            "tool": lambda: client.call_tool("crashes", arguments),
            "prompt": lambda: client.get_prompt("broken", arguments),
            "resource": lambda: client.read_resource(f"broken://{SECRET}"),
        }
        call = calls[method]()
        with pytest.raises(MCPError) as raised:
            await call
    error = raised.value.error
    assert error.code == -32603
    found = re.fullmatch(r"Internal error \(trace id ([0-9a-f]{32})\)", error.message)
    assert found, error.message
    logged = [r for r in caplog.records if r.name == "gatehouse.mcp"]
    assert len(logged) == 1
    text = logged[0].getMessage()
    assert found.group(1) in text
    assert {"tool": "RuntimeError", "prompt": "KeyError", "resource": "OSError"}[method] in text
    assert SECRET not in text
    assert logged[0].exc_info is None  # the message (user data) is never formatted


async def test_unknown_tool_and_prompt_are_32602() -> None:
    async with Client(_server().server) as client:
        with pytest.raises(MCPError) as tool:
            await client.call_tool("nope", {})
        with pytest.raises(MCPError) as prompt:
            await client.get_prompt("nope", {})
    assert (tool.value.error.code, tool.value.error.message) == (-32602, "Unknown tool: nope")
    assert (prompt.value.error.code, prompt.value.error.message) == (-32602, "Unknown prompt: nope")


class _Stored(BaseModel):
    level: int


async def test_a_validation_error_of_our_own_making_is_32603_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client's params are fine; a handler builds a model wrongly: our fault, not -32602."""

    async def set_level(
        _ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams
    ) -> EmptyResult:
        _Stored.model_validate({"level": params.level})  # a bug: "debug" is no int
        return EmptyResult()

    server = _server()
    server.server._lowlevel_server.add_request_handler(  # noqa: SLF001
        "logging/setLevel", SetLevelRequestParams, set_level
    )
    caplog.set_level(logging.ERROR, logger="gatehouse.mcp")
    async with Client(server.server, mode="legacy") as client:  # setLevel is handshake-only
        # The client's method says the capability is deprecated at 2026-07-28; it still reaches
        # the handler, which is all this test needs.
        with pytest.raises(MCPError) as raised, pytest.warns(MCPDeprecationWarning):
            await client.set_logging_level("debug")
    error = raised.value.error
    assert error.code == -32603
    assert re.fullmatch(r"Internal error \(trace id [0-9a-f]{32}\)", error.message), error.message
    [logged] = [r for r in caplog.records if r.name == "gatehouse.mcp"]
    assert "MCP logging/setLevel failed with ValidationError" in logged.getMessage()
