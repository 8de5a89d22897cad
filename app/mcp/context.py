"""What a tool knows about the call: who, through which client, with which scopes.

`AuthContext` is built by the `McpAuth` dependency for every request to /mcp and travels with
that request; tools read it with `call_context(ctx)`. It is never a global.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings

SCOPE_KEY = "gatehouse.mcp"


@dataclass(frozen=True)
class UserInfo:
    id: uuid.UUID
    email: str
    name: str


@dataclass(frozen=True)
class ClientInfo:
    id: str
    name: str


@dataclass(frozen=True)
class AuthContext:
    user: UserInfo
    client: ClientInfo
    scopes: frozenset[str]
    grant_id: uuid.UUID
    token_id: str
    expires_at: int

    def has(self, scope: str) -> bool:
        return scope in self.scopes


@dataclass(frozen=True)
class CallContext:
    """Everything a tool needs: the caller's identity and the service's resources."""

    auth: AuthContext
    settings: Settings
    sessionmaker: async_sessionmaker[AsyncSession]
    protocol_version: str | None
    app_state: Any

    def session(self) -> AsyncSession:
        return self.sessionmaker()


class NoCallContext(RuntimeError):
    pass


def call_context(ctx: Any) -> CallContext:
    """The CallContext of the MCP request a tool is serving (pass the tool's `ctx`)."""
    request = getattr(ctx.request_context, "request", None)
    found = request.scope.get(SCOPE_KEY) if request is not None else None
    if not isinstance(found, CallContext):
        raise NoCallContext("this tool was called outside an authenticated /mcp request")
    return found
