"""The MCP server: the SDK's MCPServer, and the scopes each tool needs (tools: app.mcp.tools)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from app import __version__
from app.mcp.observability import CallerAttributes

F = TypeVar("F", bound=Callable[..., Any])

# MCP 2026-07-28 (SEP-2549) cacheScope: "private" results are reused only within the authorization
# context that produced them. Resources are the person's own notes; the tool and prompt lists are
# the same for everyone today, but are said private too so that a later per-user list cannot leak
# through a shared cache. ttlMs 0: stale at once, so a revoked grant is never answered from cache.
PRIVATE_LISTS: dict[CacheableMethod, CacheHint] = {
    method: CacheHint(ttl_ms=0, scope="private")
    for method in (
        "tools/list",
        "prompts/list",
        "resources/list",
        "resources/templates/list",
        "resources/read",
    )
}


class GatehouseMCP:
    """An MCPServer plus the scope each tool requires (checked before the SDK sees the call)."""

    def __init__(self) -> None:
        self.tool_scopes: dict[str, frozenset[str]] = {}
        self.server = MCPServer(
            name="gatehouse",
            title="Gatehouse",
            version=__version__,
            instructions=(
                "Tools act for the signed-in Gatehouse user. Write tools need the mcp:write scope."
            ),
            warn_on_duplicate_tools=True,
            # No subscriptions: nothing here publishes change notifications, and a long-lived
            # listen stream would outlive the token and revocation checks made when it opened.
            subscriptions=False,
            # Every registered tool has an entry in tool_scopes (a live view, filled below).
            middleware=[CallerAttributes(self.tool_scopes.keys())],
            cache_hints=PRIVATE_LISTS,
        )

    def tool(
        self,
        *,
        name: str,
        title: str,
        description: str,
        scopes: tuple[str, ...] = (),
        read_only: bool,
        destructive: bool = False,
        idempotent: bool = False,
    ) -> Callable[[F], F]:
        """Register a tool; `scopes` beyond `mcp` are demanded with a 403 step-up challenge."""
        annotations = ToolAnnotations(
            title=title,
            readOnlyHint=read_only,
            destructiveHint=destructive if not read_only else False,
            idempotentHint=idempotent,
            openWorldHint=False,
        )

        def register(fn: F) -> F:
            self.tool_scopes[name] = frozenset(scopes)
            self.server.tool(
                name=name, title=title, description=description, annotations=annotations
            )(fn)
            return fn

        return register
