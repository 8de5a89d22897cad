"""RFC 8707 resource indicators: the one resource this server issues tokens for."""

from __future__ import annotations

from collections.abc import Sequence

from app.oauth.errors import InvalidTarget


def check_resource(mcp_resource: str, resources: Sequence[str]) -> str:
    """RFC 8707 §2: the resource must be our MCP endpoint; absent means it."""
    if not resources:
        return mcp_resource
    if len(resources) > 1:
        raise InvalidTarget("only one resource may be requested")
    if resources[0].rstrip("/") != mcp_resource:
        raise InvalidTarget(f"unknown resource; this server's resource is {mcp_resource}")
    return mcp_resource
