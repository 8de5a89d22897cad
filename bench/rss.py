"""Resident memory of one serving worker: Gatehouse vs the fair peer, after start-up and load.

    .venv/bin/python bench/rss.py                  # 3000 whoami calls over 4 connections
    .venv/bin/python bench/rss.py --requests 5000 --targets gatehouse

Each server is started the way bench/run.py starts it (same Server class, pinned to core 1, a
fresh SQLite database, a real token from Gatehouse's OAuth flow), then sent N authenticated
`tools/call` requests of `whoami` (the 2026-07-28 body) over a few concurrent connections. Every
answer must be 200 with whoami's structured result. Printed per server: VmRSS and VmHWM (the peak)
from /proc, and the number of modules loaded at exit (bench/modprobe, through PYTHONPATH).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODERN, routing_headers, tools_call_body  # noqa: E402
from run import BENCH, PYTHON, ROOT, Server, token_and_keys  # noqa: E402


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    wanted = ("VmRSS", "VmHWM")
    found: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            found[key] = int(value.split()[0])
    return found


async def load(port: int, token: str, requests: int, connections: int) -> None:
    body = json.dumps(tools_call_body(MODERN), separators=(",", ":"))
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        **routing_headers(MODERN),
    }
    url = f"http://127.0.0.1:{port}/mcp"
    remaining = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in remaining:
            response = await client.post(url, content=body, headers=headers)
            text = response.text
            if response.status_code != 200 or '"structuredContent"' not in text:
                raise SystemExit(f"port {port}: {response.status_code} {text[:300]}")

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--targets", default="gatehouse,peer")
    parser.add_argument(
        "--serve-args", default="", help="extra arguments for `python -m app serve`"
    )
    parser.add_argument("--modules", type=Path, help="write each target's module list here")
    parser.add_argument(
        "--port", type=int, default=8121, help="Gatehouse's port; the peer's is the next one"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gatehouse-rss-"))
    port = args.port
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    gh_env = {
        **env,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "PUBLIC_URL": base,
        "VAR_DIR": str(work / "var"),
        "DATABASE_URL": f"sqlite+aiosqlite:///{work}/gatehouse.db",
        "GATEHOUSE_ENV": "development",
    }
    subprocess.run([PYTHON, "-m", "app", "db", "upgrade"], cwd=ROOT, env=gh_env, check=True)
    token, shared = token_and_keys([PYTHON, "-m", "app", "serve"], port, gh_env, work)
    argv = {
        "gatehouse": ([PYTHON, "-m", "app", "serve", *args.serve_args.split()], port),
        "peer": (
            [PYTHON, str(BENCH / "peer_server.py"), "--port", str(port + 1), *shared],
            port + 1,
        ),
    }
    probe = os.pathsep.join(filter(None, [str(BENCH / "modprobe"), env.get("PYTHONPATH")]))
    rows = []
    module_lists = {}
    for target in args.targets.split(","):
        command, target_port = argv[target]
        modules_file = work / f"modules-{target}.json"
        server_env = {**gh_env, "PYTHONPATH": probe, "MODULES_FILE": str(modules_file)}
        server = Server(target, command, target_port, server_env, work / f"{target}.log")
        try:
            started = proc_status(server.proc.pid)
            asyncio.run(load(target_port, token, args.requests, args.connections))
            loaded = proc_status(server.proc.pid)
        finally:
            server.stop()
        module_lists[target] = json.loads(modules_file.read_text())
        rows.append((target, started["VmRSS"], loaded["VmRSS"], loaded["VmHWM"]))

    print(f"{args.requests} whoami tools/call ({MODERN}), {args.connections} connections")
    print()
    print(
        "| server | RSS at start MiB | RSS after load MiB | peak (VmHWM) MiB | modules "
        "| RSS ÷ peer |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    peer_rss = next((row[2] for row in rows if row[0] == "peer"), None)
    for target, at_start, after, peak in rows:
        ratio = f"{after / peer_rss:.2f}×" if peer_rss else "–"
        print(
            f"| {target} | {at_start / 1024:.1f} | {after / 1024:.1f} | {peak / 1024:.1f} "
            f"| {len(module_lists[target])} | {ratio} |"
        )
    if args.modules:
        args.modules.write_text(json.dumps(module_lists, indent=1))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
