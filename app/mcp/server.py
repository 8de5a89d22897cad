"""The MCP server: the SDK's MCPServer, and the scopes each tool needs (tools: app.mcp.tools)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from app import __version__
from app.mcp.observability import CallerAttributes

F = TypeVar("F", bound=Callable[..., Any])


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
