"""The MCP Inspector CLI (npm @modelcontextprotocol/inspector@2, on Node 22) against a running
server, with a bearer token obtained in the test: list tools and call them on both protocol
generations, and get `auth_required` for a refused token.

Node 22 and the Inspector are installed once, by npm, into a cache folder outside the repository
(tests/node.py); later runs reuse it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.mcp.support import Grant, obtain_grant
from tests.node import NODE_MAJOR, cache_dir, node_ok, node_package, node_path, npm_install

INSPECTOR = "@modelcontextprotocol/inspector@2"
CLI_TIMEOUT = 120
AUTH_REQUIRED_EXIT = 3  # the CLI's exit code for auth_required


@dataclass(frozen=True)
class InspectorCli:
    node: Path
    launcher: Path
    home: Path

    def command(self, url: str, token: str, *args: str) -> list[str]:
        return [
            str(self.node),
            str(self.launcher),
            "--cli",
            url,
            "--transport",
            "http",
            "--header",
            f"Authorization: Bearer {token}",
            "--stored-auth-only",  # never start an interactive OAuth login
            "--format",
            "json",
            *args,
        ]

    async def run(self, url: str, token: str, *args: str) -> tuple[int, str, str]:
        # HOME of its own: the Inspector keeps a catalog and client config under ~/.mcp-inspector.
        env = {**os.environ, "HOME": str(self.home), "NO_COLOR": "1"}
        process = await asyncio.create_subprocess_exec(
            *self.command(url, token, *args),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(), CLI_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def result(self, url: str, token: str, *args: str) -> dict[str, Any]:
        code, out, err = await self.run(url, token, *args)
        assert code == 0, (code, out, err)
        return dict(json.loads(out)["result"])


@pytest.fixture(scope="session")
def inspector_cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspectorCli]:
    cache = cache_dir()
    node = node_path(cache)
    launcher = (
        cache / "node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
    )
    npm_install(
        cache,
        [f"{node_package()}@{NODE_MAJOR}", INSPECTOR],
        ready=lambda: node_ok(node) and launcher.exists(),
        what="the MCP Inspector",
    )
    home = tmp_path_factory.mktemp("inspector-home")
    yield InspectorCli(node, launcher, home)
    with contextlib.suppress(OSError):
        shutil.rmtree(home)


@pytest.fixture
async def grant(live_server: LiveServer) -> Grant:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as web:
        return await obtain_grant(web)


ERAS = {"legacy": ("2025-06-18", "2025-11-25"), "modern": ("2026-07-28",)}


@pytest.mark.parametrize("era", sorted(ERAS))
async def test_inspector_lists_tools(
    inspector_cli: InspectorCli, live_server: LiveServer, grant: Grant, era: str
) -> None:
    listed = await inspector_cli.result(
        f"{live_server.url}/mcp",
        grant.access_token,
        "--protocol-era",
        era,
        "--method",
        "tools/list",
    )
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert set(tools) == {"whoami", "notes_create", "notes_list", "notes_search", "notes_delete"}
    assert tools["notes_delete"]["annotations"]["destructiveHint"] is True


@pytest.mark.parametrize("era", sorted(ERAS))
async def test_inspector_calls_whoami(
    inspector_cli: InspectorCli, live_server: LiveServer, grant: Grant, era: str
) -> None:
    called = await inspector_cli.result(
        f"{live_server.url}/mcp",
        grant.access_token,
        "--protocol-era",
        era,
        "--method",
        "tools/call",
        "--tool-name",
        "whoami",
    )
    assert called["isError"] is False
    me = called["structuredContent"]
    assert me["email"] == grant.email
    assert me["client_id"] == grant.client_id
    assert me["scopes"] == ["mcp", "mcp:write"]
    assert me["protocol_version"] in ERAS[era]


async def test_inspector_calls_a_write_tool_with_arguments(
    inspector_cli: InspectorCli, live_server: LiveServer, grant: Grant
) -> None:
    url = f"{live_server.url}/mcp"
    created = await inspector_cli.result(
        url,
        grant.access_token,
        "--method",
        "tools/call",
        "--tool-name",
        "notes_create",
        "--tool-arg",
        "title=from the inspector",
        "body=hello",
    )
    note = created["structuredContent"]
    assert (note["title"], note["body"]) == ("from the inspector", "hello")
    listed = await inspector_cli.result(
        url, grant.access_token, "--method", "tools/call", "--tool-name", "notes_list"
    )
    assert [n["id"] for n in listed["structuredContent"]["notes"]] == [note["id"]]


async def test_inspector_reports_auth_required_for_a_refused_token(
    inspector_cli: InspectorCli, live_server: LiveServer
) -> None:
    code, out, err = await inspector_cli.run(
        f"{live_server.url}/mcp", "not-a-jwt", "--method", "tools/list"
    )
    assert code == AUTH_REQUIRED_EXIT, (code, out, err)
    error = json.loads(err.strip().splitlines()[-1])["error"]
    assert error["code"] == "auth_required"
    assert "invalid_token" in error["message"]
