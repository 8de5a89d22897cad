"""`whoami`: who the tools act for, through which client, with which scopes."""

from __future__ import annotations

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from app.mcp.call import call_context
from app.mcp.server import ToolSet

toolset = ToolSet()


class WhoAmI(BaseModel):
    user_id: str = Field(description="The Gatehouse user the tools act for")
    email: str
    name: str
    client_id: str = Field(description="The OAuth client making this call")
    client_name: str
    scopes: list[str] = Field(description="Scopes granted to this client")
    protocol_version: str | None = Field(description="The MCP protocol version of this request")


@toolset.tool(
    title="Who am I",
    description="Show the signed-in user, the client making the call and its granted scopes.",
    read_only=True,
    idempotent=True,
)
async def whoami(ctx: Context) -> WhoAmI:
    call = call_context(ctx)
    auth = call.auth
    return WhoAmI(
        user_id=str(auth.user.id),
        email=auth.user.email,
        name=auth.user.name,
        client_id=auth.client.id,
        client_name=auth.client.name,
        scopes=sorted(auth.scopes),
        protocol_version=call.protocol_version,
    )


register = toolset.register
