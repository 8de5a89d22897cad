"""The authorization server stands on its own: it imports neither the vault, the connectors nor
the MCP server (they plug into it through app/oauth/consent.py's ConsentExtension)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys
import app.oauth.endpoints, app.housekeeping
print(json.dumps(sorted(
    m for m in sys.modules
    if m == "mcp" or m.startswith(("mcp.", "app.mcp", "app.vault", "app.connectors"))
)))
"""


def test_the_authorization_server_loads_no_vault_connector_or_mcp_module() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(result.stdout) == []


def _imports(root: Path) -> dict[str, set[str]]:
    """Module → the app modules it imports anywhere in its body (function-local ones too)."""
    modules = {
        ".".join(p.with_suffix("").parts).removesuffix(".__init__"): p for p in root.rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def _cycle_from(graph: dict[str, set[str]], start: str) -> list[str] | None:
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        path.append(node)
        for nxt in sorted(graph[node]):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        return None

    return visit(start)


def test_the_authorization_server_has_no_import_cycle() -> None:
    graph = _imports(Path("app/oauth"))
    assert graph["app.oauth.endpoints"]  # the graph was read: the router imports its endpoints
    cycles = [c for name in sorted(graph) if (c := _cycle_from(graph, name))]
    assert cycles == []
