"""CPU cost per request of each app, called in-process through ASGI (no sockets, no uvicorn).

On a machine shared with other work, wrk's req/s swings with everyone else's load. This driver
removes the network and the HTTP server and measures what the application itself costs: each
target runs in its own process pinned to core 1, answers the same `tools/call` of `whoami`
sequentially, and reports process CPU time per request over many small batches; the minimum
batch is the least-disturbed estimate, the median is shown too.

    .venv/bin/python bench/inprocess.py [--batches 40 --batch 50] [--variant NAME:DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HANDSHAKE, MODERN, routing_headers, tools_call_body  # noqa: E402

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BASE = "http://127.0.0.1:8101"


def scope_for(generation: str, token: str) -> tuple[dict[str, Any], bytes]:
    body = json.dumps(tools_call_body(generation), separators=(",", ":")).encode()
    headers = {
        "host": "127.0.0.1:8101",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {token}",
        "mcp-protocol-version": generation,
        "content-length": str(len(body)),
        **{k.lower(): v for k, v in routing_headers(generation).items()},
    }
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/mcp",
        "raw_path": b"/mcp",
        "query_string": b"",
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8101),
    }
    return scope, body


async def one(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    done = asyncio.Event()
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                done.set()

    await app(dict(scope), receive, send)
    return status, b"".join(chunks)


async def measure(app: Any, token: str, batches: int, batch: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        for generation in (MODERN, HANDSHAKE):
            scope, body = scope_for(generation, token)
            status, answer = await one(app, scope, body)
            if status != 200 or b'"structuredContent"' not in answer or b'"error"' in answer:
                raise SystemExit(f"{generation}: {status} {answer[:400]!r}")
            for _ in range(200):
                await one(app, scope, body)
            cpu: list[float] = []
            wall: list[float] = []
            for _ in range(batches):
                c0, w0 = time.process_time(), time.perf_counter()
                for _ in range(batch):
                    await one(app, scope, body)
                cpu.append((time.process_time() - c0) / batch * 1e6)
                wall.append((time.perf_counter() - w0) / batch * 1e6)
            out[generation] = {
                "cpu_min_us": min(cpu),
                "cpu_median_us": statistics.median(cpu),
                "wall_min_us": min(wall),
            }
    return out


def worker(args: argparse.Namespace) -> None:
    token = Path(args.token_file).read_text().strip()
    if args.worker == "peer" or args.worker == "ceiling":
        module = __import__(f"{args.worker}_server")
        ns = argparse.Namespace(
            jwks=args.jwks, issuer=BASE, audience=f"{BASE}/mcp", sse=False, no_verify=False
        )
        app = module.build(ns)
    else:
        sys.path.insert(0, os.getcwd())
        from app.main import create_app

        app = create_app()
    import uvloop

    result = uvloop.run(measure(app, token, args.batches, args.batch))
    print("RESULT " + json.dumps(result), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--targets", default="gatehouse,peer,ceiling")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME:DIR")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--token-file", help=argparse.SUPPRESS)
    parser.add_argument("--jwks", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    from run import PYTHON, Server, gatehouse_env, get_token

    work = Path(tempfile.mkdtemp(prefix="gatehouse-inprocess-"))
    env = gatehouse_env(work)
    subprocess.run([PYTHON, "-m", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    server = Server("gatehouse", [PYTHON, "-m", "app", "serve"], 8101, env, work / "gh.log")
    try:
        import httpx

        (work / "token").write_text(get_token(BASE, f"{BASE}/mcp"))
        (work / "jwks.json").write_text(httpx.get(f"{BASE}/jwks.json").text)
    finally:
        server.stop()
    dirs = {"gatehouse": ROOT, "peer": BENCH, "ceiling": BENCH}
    for spec in args.variant:
        name, directory = spec.split(":", 1)
        dirs[name] = Path(directory)
    results: dict[str, list[dict[str, Any]]] = {}
    for _ in range(args.rounds):
        for target in args.targets.split(","):
            kind = target if target in ("peer", "ceiling") else "gatehouse"
            out = subprocess.run(
                [
                    "taskset",
                    "-c",
                    "1",
                    PYTHON,
                    str(BENCH / "inprocess.py"),
                    "--worker",
                    kind,
                    "--token-file",
                    str(work / "token"),
                    "--jwks",
                    str(work / "jwks.json"),
                    "--batches",
                    str(args.batches),
                    "--batch",
                    str(args.batch),
                ],
                cwd=dirs[target],
                env={**env, "PYTHONPATH": str(BENCH)},
                capture_output=True,
                text=True,
                timeout=600,
            )
            line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
            if line is None:
                raise SystemExit(f"{target}: {out.stdout[-2000:]}{out.stderr[-3000:]}")
            result = json.loads(line[len("RESULT ") :])
            results.setdefault(target, []).append(result)
            print(target, json.dumps(result), flush=True)
    print()
    print("| generation | app | CPU µs/req (min batch) | median batch | ÷ peer (min) |")
    print("|---|---|---:|---:|---:|")
    for generation in (MODERN, HANDSHAKE):
        best = {t: min(r[generation]["cpu_min_us"] for r in rs) for t, rs in results.items()}
        for target, rs in results.items():
            median = statistics.median(r[generation]["cpu_median_us"] for r in rs)
            ratio = f"{best[target] / best['peer']:.2f}×" if "peer" in best else "–"
            print(f"| {generation} | {target} | {best[target]:.0f} | {median:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
