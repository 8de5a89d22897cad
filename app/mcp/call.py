"""`CallContext`: what a tool knows about the call it serves, and how a tool finds it.

`app.mcp.endpoint` puts one in the ASGI scope before handing the request to the SDK; a tool
reads it with `call_context(ctx)`. It is never a global.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp.server.mcpserver import Context
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.mcp.context import AuthContext
from app.state import Services

SCOPE_KEY = "gatehouse.mcp"


@dataclass(frozen=True)
class CallContext:
    """Everything a tool needs: the caller's identity and the service's resources."""

    auth: AuthContext
    services: Services
    protocol_version: str | None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    def session(self) -> AsyncSession:
        return self.services.sessionmaker()


class NoCallContext(RuntimeError):
    pass


def call_context(ctx: Context) -> CallContext:
    """The CallContext of the MCP request a tool is serving (pass the tool's `ctx`)."""
    request = getattr(ctx.request_context, "request", None)
    found = request.scope.get(SCOPE_KEY) if request is not None else None
    if not isinstance(found, CallContext):
        raise NoCallContext("this tool was called outside an authenticated /mcp request")
    return found
