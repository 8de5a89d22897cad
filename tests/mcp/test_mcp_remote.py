"""mcp-remote (npm, pinned, on Node 22) through the whole flow over stdio: authorization in
Chromium, tools/call, a forced expiry (ACCESS_TOKEN_TTL=60 on a live server) answered by a silent
refresh, a revoke from /account/apps, and re-consent."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Backend, LiveServer, free_port, start_server
from tests.helpers import PASSWORD
from tests.node import cache_dir, node_22, npm_install
from tests.oauth.test_oauth_browser import sign_up_then_out

MCP_REMOTE = "mcp-remote@0.15.1"
AUTHORIZE_URL = re.compile(r"Please authorize this client by visiting:\s*(\S+)")
TTL = 60


@pytest.fixture(scope="module")
def mcp_remote() -> tuple[Path, Path]:
    prefix = cache_dir() / "mcp-remote"  # its own folder: other tests pin other packages
    proxy = prefix / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
    npm_install(prefix, [MCP_REMOTE], ready=proxy.exists, what="mcp-remote")
    return node_22(), proxy


@pytest.fixture
def server(backend: Backend, tmp_path: Path) -> Iterator[LiveServer]:
    live = start_server(backend, tmp_path, ACCESS_TOKEN_TTL=str(TTL))
    yield live
    live.stop()


class Bridge:
    """One mcp-remote process: JSON-RPC lines in on stdin, out on stdout; its log on stderr."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[str] = []
        self.urls: asyncio.Queue[str] = asyncio.Queue()
        self._next_id = 0
        self._reader = asyncio.create_task(self._read_log())

    async def _read_log(self) -> None:
        assert self.process.stderr is not None
        buffered = ""
        async for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            self.log.append(line)
            buffered = (buffered + line)[-4000:]
            found = AUTHORIZE_URL.search(buffered)
            if found:
                await self.urls.put(found.group(1))
                buffered = ""

    async def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        await self.process.stdin.drain()

    async def request(self, method: str, params: dict[str, Any], timeout: float = 90) -> Any:
        self._next_id += 1
        wanted = self._next_id
        await self.send({"jsonrpc": "2.0", "id": wanted, "method": method, "params": params})
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError("mcp-remote exited:\n" + "".join(self.log[-40:]))
                message = json.loads(line)
                if message.get("id") == wanted:
                    return message


@pytest.fixture
async def bridge(
    mcp_remote: tuple[Path, Path], server: LiveServer, tmp_path: Path
) -> AsyncIterator[Bridge]:
    node, proxy = mcp_remote
    env = {
        **os.environ,
        "MCP_REMOTE_CONFIG_DIR": str(tmp_path / "mcp-auth"),
        "BROWSER": "true",  # nothing opens a browser: the test drives Chromium itself
        "DISPLAY": "",
    }
    process = await asyncio.create_subprocess_exec(
        str(node),
        str(proxy),
        server.url + "/mcp",
        str(free_port()),
        "--allow-http",
        "--transport",
        "http-only",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    yield Bridge(process)
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()


async def approve(page: Any, url: str, server: LiveServer, email: str | None) -> None:
    """Open mcp-remote's authorization URL, sign in if asked, approve; wait for its callback."""
    await page.goto(url)
    if email is not None and "/sign-in" in page.url:
        await page.get_by_label("Email").fill(email)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{server.url}/authorize?**")
    approve_button = page.get_by_role("button", name="Approve")
    if await approve_button.count():
        await approve_button.click()
    await page.wait_for_url(re.compile(r"http://(localhost|127\.0\.0\.1):\d+/oauth/callback.*"))


async def whoami(bridge: Bridge) -> str:
    reply = await bridge.request("tools/call", {"name": "whoami", "arguments": {}})
    assert "result" in reply, reply
    return json.dumps(reply["result"])


async def test_mcp_remote_whole_flow(browser: Any, server: LiveServer, bridge: Bridge) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    email = await sign_up_then_out(page, server)
    initialize = asyncio.create_task(
        bridge.request(
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "gatehouse-tests", "version": "1"},
            },
            timeout=180,
        )
    )
    url = await asyncio.wait_for(bridge.urls.get(), 120)
    await approve(page, url, server, email)
    assert "result" in await initialize
    await bridge.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    assert email in await whoami(bridge)

    # Forced expiry: the access token lives 60 s; the next call is answered after a silent
    # refresh (no new authorization URL).
    await asyncio.sleep(TTL + 5)
    assert email in await whoami(bridge)
    assert bridge.urls.empty()

    # Revoked from /account/apps: the next call needs a new consent, which mcp-remote asks for.
    await page.goto(server.url + "/account/apps")
    await page.get_by_role("button", name=re.compile("Revoke|Disconnect")).first.click()
    await page.wait_for_load_state()
    await asyncio.sleep(6)  # the resource server learns of revocations within 5 s
    again = asyncio.create_task(whoami(bridge))
    url = await asyncio.wait_for(bridge.urls.get(), 120)
    await approve(page, url, server, email)
    assert email in await again
    await context.close()
