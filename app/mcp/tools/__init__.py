"""Every tool, resource and prompt /mcp offers, registered by `register_all`."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from app.connectors import github_tools
from app.connectors.base import Connector
from app.mcp.server import GatehouseMCP
from app.mcp.tools import notes, whoami

# Each connector's tools, by connector name; registered only when CONNECTORS enables it.
CONNECTOR_TOOLS: dict[str, Callable[[GatehouseMCP], None]] = {
    "github": github_tools.register,
}


def register_all(
    server: GatehouseMCP, connectors: Iterable[Connector] = (), toolsets: Iterable[str] = ()
) -> GatehouseMCP:
    whoami.register(server)
    notes.register(server)
    for connector in connectors:
        CONNECTOR_TOOLS[connector.name](server)
    if "conformance" in toolsets:
        # Imported only when enabled: the MCP conformance suite's fixtures (MCP_TOOLSETS).
        from app.mcp.tools import conformance

        conformance.register(server)
    return server
