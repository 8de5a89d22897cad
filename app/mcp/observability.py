"""Who and which client, on the SDK's own MCP spans; durations per method and per tool.

The SDK wraps each MCP message in a span following the OpenTelemetry semantic conventions for
MCP (mcp.method.name, gen_ai.tool.name, mcp.protocol.version, jsonrpc.request.id, error.type).
This middleware runs inside that span and adds `enduser.id` and the OAuth `client_id`.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from opentelemetry import trace

from app.mcp.call import SCOPE_KEY, CallContext
from app.telemetry import mcp_duration, tool_duration

KNOWN_METHODS = frozenset(
    {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/templates/list",
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "server/discover",
        "subscriptions/listen",
        "notifications/initialized",
        "notifications/cancelled",
    }
)


class CallerAttributes:
    def __init__(self, tools: Collection[str]) -> None:
        self._tools = tools

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        request = ctx.request
        call = request.scope.get(SCOPE_KEY) if request is not None else None
        if isinstance(call, CallContext):
            span = trace.get_current_span()
            span.set_attribute("enduser.id", str(call.auth.user.id))
            span.set_attribute("oauth.client_id", call.auth.client.id)
        started = time.perf_counter()
        error: str | None = None
        try:
            return await call_next(ctx)
        except Exception as exc:
            error = type(exc).__qualname__
            raise
        finally:
            elapsed = time.perf_counter() - started
            # Metric attributes only ever take values the server defines: a client-chosen
            # method or tool name would start a new series held in memory for the process's life.
            method = ctx.method if ctx.method in KNOWN_METHODS else "_other"
            attributes: dict[str, str] = {"mcp.method.name": method}
            if error:
                attributes["error.type"] = error
            mcp_duration.record(elapsed, attributes)
            name = ctx.params.get("name") if ctx.params else None
            if method == "tools/call":
                tool = name if isinstance(name, str) and name in self._tools else "_unknown"
                tool_duration.record(elapsed, {**attributes, "gen_ai.tool.name": tool})
