"""Role `auth` never loads the MCP SDK: building its app imports no `mcp` module.

The authorization server, its pages and the credential pages (with every connector enabled)
must work without the SDK, so `app.main`'s per-role imports mean what they say. A subprocess,
so modules other tests loaded do not count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import sys
from app.config import load_settings
from app.main import create_app
create_app(load_settings())
loaded = sorted(m for m in sys.modules if m == "mcp" or m.startswith("mcp."))
print("MCP-MODULES:" + ",".join(loaded))
"""


def _modules_loaded(role: str, tmp_path: Path) -> list[str]:
    env = {
        **os.environ,
        "GATEHOUSE_ROLE": role,
        "GATEHOUSE_ENV": "development",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'roles.db'}",
        "CONNECTORS": "github",
        "OTEL_SDK_DISABLED": "true",
    }
    for name in ("PUBLIC_URL", "AUTH_ISSUER_URL", "REDIS_URL"):
        env.pop(name, None)
    # -c with cwd at the project root: this checkout's app/, not another installed copy.
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    [line] = [x for x in done.stdout.splitlines() if x.startswith("MCP-MODULES:")]
    return [m for m in line.removeprefix("MCP-MODULES:").split(",") if m]


def test_role_auth_imports_no_mcp_sdk(tmp_path: Path) -> None:
    assert _modules_loaded("auth", tmp_path) == []


@pytest.mark.parametrize("role", ["all", "mcp"])
def test_roles_serving_mcp_do_load_the_sdk(role: str, tmp_path: Path) -> None:
    # The probe can see the SDK when it is there: the test above cannot pass vacuously.
    assert "mcp.server" in _modules_loaded(role, tmp_path)
