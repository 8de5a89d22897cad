"""The serving process leaves out what it does not use: memory it would keep for good.

`gatehouse serve` (one worker) is the CLI process: it imports the commands, builds the app in
role `all` and serves it. Without REDIS_URL, SMTP_URL or OTLP configured, and before any passkey
ceremony, TOTP enrolment or migration, none of these may be loaded (bench/rss.py measures what
each cost). A subprocess, so modules other tests loaded do not count.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PROBE = """
import logging
import sys
import app.cli
from app.config import load_settings
from app.cli.common import head_revision
from app.main import create_app
settings = load_settings()
assert head_revision(settings.database_url)  # what `serve` asks before it serves
create_app(settings)
print("MODULES:" + ",".join(sorted(sys.modules)))
print("ROOT:" + ",".join(type(h).__name__ for h in logging.getLogger().handlers))
"""

NOT_LOADED = (
    "alembic",  # app/cli/common.py reads the newest migration in a child process
    "mako",
    "redis",  # only with REDIS_URL
    "webauthn",  # only in the passkey functions
    "opentelemetry.sdk",  # only when OTLP is configured
    "aiosmtplib",  # only when mail is sent over SMTP
    "segno",  # only for the TOTP enrolment QR code
    "pygments",  # httpx's command-line client (app/__init__.py)
    "rich",  # the SDK's configure_logging (app/mcp/server.py)
)


def _probe(tmp_path: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "GATEHOUSE_ROLE": "all",
        "GATEHOUSE_ENV": "development",
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serving.db'}",
        "CONNECTORS": "github",
    }
    for name in ("PUBLIC_URL", "AUTH_ISSUER_URL", "REDIS_URL", "SMTP_URL"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("OTEL_")]:
        env.pop(name)
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,  # this checkout's app/
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = [x.partition(":") for x in done.stdout.splitlines()]
    return {key: value for key, _, value in lines if key in ("MODULES", "ROOT")}


def _loaded(tmp_path: Path) -> set[str]:
    return set(_probe(tmp_path)["MODULES"].split(","))


def test_the_serving_process_loads_none_of_the_optional_heavy_packages(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path)
    # The probe sees what is there: the test below cannot pass vacuously.
    assert {"sqlalchemy", "fastapi", "mcp.server", "httpx", "app.main"} <= loaded
    found = sorted(m for m in loaded for p in NOT_LOADED if m == p or m.startswith(p + "."))
    assert found == []


def test_building_the_app_leaves_the_root_logger_to_gatehouse(tmp_path: Path) -> None:
    """MCPServer's constructor would put a rich handler on an unconfigured root logger (every
    library's INFO lines printed unscrubbed): nothing configured logging here, so nothing may
    hang on the root logger after the app is built."""
    assert _probe(tmp_path)["ROOT"] == ""
