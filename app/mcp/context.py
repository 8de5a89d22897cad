"""Who is calling: the user, through which client, with which scopes (no MCP SDK here).

`AuthContext` is built by `app.mcp.auth.authenticate` for every request to /mcp (and for every
route that takes `McpAuth`) and travels with that request; it is never a global.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


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
