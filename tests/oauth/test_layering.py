"""The authorization server stands on its own: it imports neither the vault, the connectors nor
the MCP server (they plug into it through app/oauth/consent.py's ConsentExtension)."""

from __future__ import annotations

import json
import subprocess
import sys

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
