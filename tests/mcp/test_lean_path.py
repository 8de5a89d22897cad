"""Which requests the lean kernel (app/mcp/lean.py) answers, that a deployer's own tools answer
through it as through the SDK, and that a changed registry shows in tools/list at once."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp_types import Annotations, CallToolResult, TextContent

from app.mcp import lean, modern
from app.mcp.lean import LeanKernel
from app.mcp.server import GatehouseMCP
from tests.mcp.equivalence import Answer, both, endpoint_of, send
from tests.mcp.support import MODERN, Grant, mcp_request, obtain_grant

TRACE_ID = re.compile(rb"trace id [0-9a-f]{32}")


@pytest.fixture
async def grant(lean_client: httpx.AsyncClient) -> Grant:
    return await obtain_grant(lean_client, write=True)


async def lean_crash() -> str:
    raise RuntimeError("a secret the client must not see")


async def lean_protocol_error() -> str:
    raise MCPError(code=-32001, message="refused", data={"why": "because"})


async def lean_meta() -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text="x")], _meta={"com.example/x": 1})


async def lean_annotated() -> list[TextContent]:
    return [TextContent(type="text", text="a", annotations=Annotations(priority=0.5))]


async def lean_values() -> dict[str, Any]:
    return {"none": None, "nested": [None, {"a": None}], "big": 10**30, "nan": float("nan")}


def lean_sync(word: str = "hi") -> str:
    return word * 2


async def lean_none() -> None:
    return None


DEPLOYER_TOOLS: list[Callable[..., Any]] = [
    lean_crash,
    lean_protocol_error,
    lean_meta,
    lean_annotated,
    lean_values,
    lean_sync,
    lean_none,
]


@pytest.fixture
def deployer_tools(lean_app: FastAPI) -> Iterator[GatehouseMCP]:
    """A deployer's tools, registered while the app serves; gone again after the test."""
    server = endpoint_of(lean_app).server
    for fn in DEPLOYER_TOOLS:
        server.tool(
            name=fn.__name__, title=fn.__name__, description="a deployer's", read_only=True
        )(fn)
    try:
        yield server
    finally:
        for fn in DEPLOYER_TOOLS:
            server.server.remove_tool(fn.__name__)
            del server.tool_scopes[fn.__name__]


def _call(grant: Grant, name: str, arguments: dict[str, Any] | None = None) -> Any:
    params = {"name": name, "arguments": arguments or {}}
    return mcp_request("tools/call", params, token=grant.access_token, version=MODERN)


def _incident_free(answer: Answer) -> Answer:
    """A -32603 names a fresh incident id each time; the rest must be the same."""
    return answer[0], answer[1], TRACE_ID.sub(b"trace id <incident>", answer[2])


@pytest.mark.parametrize("fn", DEPLOYER_TOOLS, ids=lambda fn: fn.__name__)
async def test_a_deployers_tool_answers_as_through_the_sdk(
    lean_client: httpx.AsyncClient,
    grant: Grant,
    monkeypatch: pytest.MonkeyPatch,
    deployer_tools: GatehouseMCP,
    fn: Callable[..., Any],
) -> None:
    lean_answer, sdk_answer = await both(lean_client, monkeypatch, *_call(grant, fn.__name__))
    assert _incident_free(lean_answer) == _incident_free(sdk_answer)
    assert b"secret" not in lean_answer[2]


async def test_tools_list_shows_a_tool_registered_while_serving(
    lean_client: httpx.AsyncClient, grant: Grant, monkeypatch: pytest.MonkeyPatch, lean_app: FastAPI
) -> None:
    """Added, replaced by another (as many tools as before), removed: each listing is the SDK's."""
    listing = mcp_request("tools/list", None, token=grant.access_token, version=MODERN)
    before, _ = await both(lean_client, monkeypatch, *listing)
    server = endpoint_of(lean_app).server
    answers: list[tuple[Answer, Answer]] = []
    try:
        for name in ("lean_late", "lean_later"):
            server.tool(name=name, title=name, description=name, read_only=True)(lean_none)
            if name == "lean_later":
                server.server.remove_tool("lean_late")
                del server.tool_scopes["lean_late"]
            answers.append(await both(lean_client, monkeypatch, *listing))
    finally:
        server.server.remove_tool("lean_later")
        del server.tool_scopes["lean_later"]
    answers.append(await both(lean_client, monkeypatch, *listing))
    (added, sdk_added), (replaced, sdk_replaced), (removed, sdk_removed) = answers
    assert (added, replaced, removed) == (sdk_added, sdk_replaced, sdk_removed)
    assert b'"name":"lean_late"' in added[2]
    assert b'"name":"lean_later"' in replaced[2]
    assert b'"name":"lean_late"' not in replaced[2]
    assert removed == before


@pytest.fixture
def served_by(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Who answered each request: "lean" (no serve_one at all), "sdk" (serve_one)."""
    seen: list[str] = []
    real_serve, real_one = LeanKernel.serve, modern.serve_one

    async def serve(self: LeanKernel, *args: Any, **kwargs: Any) -> Any:
        seen.append("lean")
        return await real_serve(self, *args, **kwargs)

    async def serve_one(*args: Any, **kwargs: Any) -> Any:
        seen.append("sdk")
        return await real_one(*args, **kwargs)

    monkeypatch.setattr(LeanKernel, "serve", serve)
    monkeypatch.setattr(modern, "serve_one", serve_one)
    monkeypatch.setattr(lean, "serve_one", serve_one)
    return seen


async def test_the_plain_requests_are_answered_without_serve_one(
    lean_client: httpx.AsyncClient, grant: Grant, served_by: list[str]
) -> None:
    listing = mcp_request("tools/list", None, token=grant.access_token, version=MODERN)
    for request in (_call(grant, "whoami"), listing, listing, _call(grant, "notes_list")):
        status, _, body = await send(lean_client, *request)
        assert status == 200, body
    # The first listing after start-up may be computed by serve_one, then kept.
    assert served_by in (["lean"] * 4, ["lean", "lean", "sdk", "lean", "lean"])


async def test_anything_else_goes_to_serve_one(
    lean_client: httpx.AsyncClient, grant: Grant, served_by: list[str]
) -> None:
    stated, headers = _call(grant, "whoami")
    stated["params"]["requestState"] = "v1.x"
    prompts = mcp_request("prompts/list", None, token=grant.access_token, version=MODERN)
    cursor = mcp_request("tools/list", {"cursor": "a"}, token=grant.access_token, version=MODERN)
    for request in ((stated, headers), prompts, cursor):
        await send(lean_client, *request)
    assert served_by == ["sdk", "sdk", "sdk"]


async def _no_op(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    return await call_next(ctx)


def test_only_the_chain_gatehouse_installs_is_served() -> None:
    """With tracing on (the SDK's span middleware in the chain) or a middleware of a deployer's,
    the kernel answers nothing: the chain it would skip is no longer the one it knows."""
    quiet, traced = GatehouseMCP(tracing=False), GatehouseMCP(tracing=True)
    assert LeanKernel(quiet.server).configured("tools/call")
    assert LeanKernel(quiet.server).configured("tools/list")
    assert not LeanKernel(traced.server).configured("tools/call")
    assert not LeanKernel(traced.server).configured("tools/list")
    chain = quiet.server.middleware
    chain.append(_no_op)
    assert not LeanKernel(quiet.server).configured("tools/call")
    chain[1] = chain.pop()  # in ProtocolErrors' place: as long a chain as Gatehouse's
    assert not LeanKernel(quiet.server).configured("tools/call")
