"""`call_context(ctx)` hands a tool the endpoint's CallContext with every field kept, bound to
the tool's SDK Context."""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from starlette.requests import Request

from app.mcp.call import SCOPE_KEY, CallContext, call_context


def test_every_field_but_ctx_is_the_endpoints() -> None:
    found = CallContext(**{f.name: object() for f in fields(CallContext)})
    request = Request({"type": "http", SCOPE_KEY: found})
    sdk_context: ServerRequestContext[Any, Any] = ServerRequestContext(
        session=None,  # type: ignore[arg-type]  # not read by call_context
        lifespan_context=None,
        protocol_version="2026-07-28",
        method="tools/call",
        request=request,
    )
    ctx: Context[Any, Any] = Context(request_context=sdk_context)
    bound = call_context(ctx)
    assert bound == replace(found, ctx=ctx)
    assert all(
        getattr(bound, f.name) is getattr(found, f.name)
        for f in fields(CallContext)
        if f.name != "ctx"
    )
    assert bound.ctx is ctx
