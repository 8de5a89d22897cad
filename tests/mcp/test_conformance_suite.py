"""The official MCP conformance suite (npm @modelcontextprotocol/conformance, pinned) against a
live Gatehouse with MCP_TOOLSETS=conformance, through a local proxy that adds the bearer token
from the real OAuth flow: the 2026-07-28 requirement set and the 2025-11-25 scenarios.

Zero failures outside tests/mcp/conformance-expected-failures.yml (the tasks extension's
scenarios only, with the reason). One server for the module; SQLite (the suite exercises
the MCP surface, not the database).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.mcp.conformance_proxy import bearer_proxy
from tests.mcp.conftest import ConformanceServer
from tests.node import cache_dir, node_22, npm_install

CONFORMANCE_VERSION = "0.2.0-alpha.12"
CONFORMANCE = f"@modelcontextprotocol/conformance@{CONFORMANCE_VERSION}"
PACKAGE = "node_modules/@modelcontextprotocol/conformance"
CLI = f"{PACKAGE}/dist/index.js"
EXPECTED = Path(__file__).parent / "conformance-expected-failures.yml"
RUN_TIMEOUT = 900


def _pinned_version_installed(cache: Path) -> bool:
    """The CLI is there and is exactly the pinned version (another test may install another)."""
    try:
        manifest = json.loads((cache / PACKAGE / "package.json").read_text())
    except (OSError, ValueError):
        return False
    return manifest.get("version") == CONFORMANCE_VERSION and (cache / CLI).exists()


@pytest.fixture(scope="module")
def conformance_cli() -> tuple[Path, Path]:
    prefix = cache_dir() / "conformance"  # its own folder: other tests pin other packages
    npm_install(
        prefix,
        [CONFORMANCE],
        ready=lambda: _pinned_version_installed(prefix),
        what="the MCP conformance suite",
    )
    return node_22(), prefix / CLI


@pytest.fixture(scope="module")
async def suite_url(conformance_server: ConformanceServer) -> AsyncIterator[str]:
    target = conformance_server
    async with bearer_proxy(
        target.server.url, target.grant.access_token, port=target.proxy_port
    ) as proxy:
        yield f"{proxy}/mcp"


@pytest.mark.parametrize(
    "selection",
    [["--requirements", "2026-07-28"], ["--spec-version", "2025-11-25"]],
    ids=["requirements-2026-07-28", "spec-version-2025-11-25"],
)
async def test_conformance_suite_passes(
    conformance_cli: tuple[Path, Path],
    conformance_server: ConformanceServer,
    suite_url: str,
    selection: list[str],
    tmp_path: Path,
) -> None:
    node, cli = conformance_cli
    server, url = conformance_server.server, suite_url
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(cli),
        "server",
        "--url",
        url,
        *selection,
        "--expected-failures",
        str(EXPECTED),
        "-o",
        str(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), RUN_TIMEOUT)
    report = out.decode(errors="replace")
    summary = report[report.rfind("=== SUMMARY ===") :]
    assert process.returncode == 0, (
        f"{summary}\n--- server log ---\n{server.log.read_text()[-4000:]}"
    )
    assert "Total:" in summary
