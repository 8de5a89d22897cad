"""The token endpoint under load: `refresh_token` and `authorization_code` grants on one worker.

    .venv/bin/python bench/token_bench.py --database-url postgresql://postgres@127.0.0.1:5432/bench

Gatehouse runs alone on core 1 (one uvicorn worker, no access log) against the database given
(PostgreSQL for the figure in docs/PERFORMANCE.md); this driver runs on core 0. It signs up a
user, registers a public client and runs the real authorization flow (PKCE, `resource`, the
consent form) once per connection, so each connection holds its own refresh token. Then:

- **refresh**: each connection posts `grant_type=refresh_token` with the token it holds and takes
  the rotated one from the answer for its next request (a rotation chain per connection, as a
  client does). Every answer must be 200 with a new refresh token, or the run fails: a grant
  that answered is a rotation committed to the database (the handler commits before it answers).
- **authorization_code**: codes are minted first through `/authorize` (consent remembered), then
  exchanged concurrently with their PKCE verifiers; only the exchanges are timed.

Reported: grants per second, p50/p99 latency of each grant, server CPU time per grant.
A raw asyncio HTTP/1.1 client keeps the driver's own cost small next to the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402
    CSRF_RE,
    PENDING_RE,
    PYTHON,
    REDIRECT_URI,
    ROOT,
    Server,
    fresh_database,
    gatehouse_env,
    register_public_client,
    sign_up,
)

BASE = "http://127.0.0.1:8101"


class Connection:
    """One keep-alive HTTP/1.1 connection posting forms to /token."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", 8101)
        return cls(reader, writer)

    async def post_form(self, path: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        body = urlencode(form).encode()
        self.writer.write(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:8101\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, json.loads(await self.reader.readexactly(length))

    def close(self) -> None:
        self.writer.close()


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Flow:
    """A signed-in browser and a registered public client: mints authorization codes."""

    def __init__(self) -> None:
        self.browser = httpx.Client(base_url=BASE, timeout=30)
        sign_up(self.browser)
        self.client_id = register_public_client(self.browser)

    def code(self) -> tuple[str, str]:
        """(code, verifier): consent once, remembered after that."""
        verifier, challenge = _pkce()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "bench",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "mcp",
            "resource": f"{BASE}/mcp",
        }
        answer = self.browser.get("/authorize", params=params)
        if answer.status_code == 200:  # the consent page, the first time
            answer = self.browser.post(
                "/consent",
                data={
                    "csrf_token": CSRF_RE.search(answer.text).group(1),  # type: ignore[union-attr]
                    "pending": PENDING_RE.search(answer.text).group(1),  # type: ignore[union-attr]
                    "action": "approve",
                },
            )
        query = parse_qs(urlsplit(answer.headers["location"]).query)
        return query["code"][0], verifier

    def exchange_form(self, code: str, verifier: str) -> dict[str, str]:
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
            "client_id": self.client_id,
        }


async def _refresh_run(
    flow: Flow, tokens: list[str], seconds: float
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def chain(index: int) -> None:
        connection = await Connection.open()
        try:
            while time.perf_counter() < deadline:
                form = {
                    "grant_type": "refresh_token",
                    "refresh_token": tokens[index],
                    "client_id": flow.client_id,
                }
                started = time.perf_counter()
                status, body = await connection.post_form("/token", form)
                latencies.append(time.perf_counter() - started)
                if status != 200 or body.get("refresh_token") in (None, tokens[index]):
                    raise SystemExit(f"refresh answered {status}: {body}")
                tokens[index] = body["refresh_token"]
        finally:
            connection.close()

    await asyncio.gather(*(chain(i) for i in range(len(tokens))))
    return latencies, tokens


async def _exchange_run(flow: Flow, codes: list[tuple[str, str]], connections: int) -> list[float]:
    latencies: list[float] = []
    queue = list(codes)

    async def worker() -> None:
        connection = await Connection.open()
        try:
            while queue:
                code, verifier = queue.pop()
                started = time.perf_counter()
                status, body = await connection.post_form(
                    "/token", flow.exchange_form(code, verifier)
                )
                latencies.append(time.perf_counter() - started)
                if status != 200 or "refresh_token" not in body:
                    raise SystemExit(f"code exchange answered {status}: {body}")
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return latencies


def _summary(name: str, latencies: list[float], wall: float, cpu: float) -> dict[str, Any]:
    ordered = sorted(latencies)
    return {
        "grant": name,
        "count": len(ordered),
        "per_second": len(ordered) / wall,
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        "cpu_us_per_grant": cpu / len(ordered) * 1e6,
    }


def measure(
    database_url: str, *, seconds: float, connections: int, codes: int
) -> list[dict[str, Any]]:
    """Start Gatehouse, run both loads, stop it; one summary per grant type."""
    work = Path(tempfile.mkdtemp(prefix="gatehouse-token-bench-"))
    env = gatehouse_env(work, database_url, SIGNUP_LIMIT_IP="10000 per hour")
    subprocess.run([PYTHON, "-m", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    server = Server(
        "gatehouse",
        [PYTHON, "-m", "app", "serve", "--no-access-log"],
        8101,
        env,
        work / "gatehouse.log",
    )
    try:
        flow = Flow()
        tokens = []
        for _ in range(connections):
            code, verifier = flow.code()
            exchanged = flow.browser.post("/token", data=flow.exchange_form(code, verifier))
            tokens.append(exchanged.json()["refresh_token"])
        asyncio.run(_refresh_run(flow, tokens, 2.0))  # warm-up
        cpu, started = server.cpu_seconds(), time.perf_counter()
        latencies, tokens = asyncio.run(_refresh_run(flow, tokens, seconds))
        refresh = _summary(
            "refresh_token", latencies, time.perf_counter() - started, server.cpu_seconds() - cpu
        )
        minted = [flow.code() for _ in range(codes)]
        cpu, started = server.cpu_seconds(), time.perf_counter()
        latencies = asyncio.run(_exchange_run(flow, minted, connections))
        exchange = _summary(
            "authorization_code",
            latencies,
            time.perf_counter() - started,
            server.cpu_seconds() - cpu,
        )
        flow.browser.close()
    finally:
        server.stop()
    return [refresh, exchange]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL URL, dropped and created again (default: a fresh SQLite file)",
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--codes", type=int, default=1500)
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    # A database of an earlier run holds values sealed with that run's key: start from an empty one.
    database_url = fresh_database(args.database_url) if args.database_url else ""
    results = measure(
        database_url, seconds=args.seconds, connections=args.connections, codes=args.codes
    )
    print("| grant | grants | grants/s | p50 ms | p99 ms | server CPU µs/grant |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['grant']} | {r['count']} | {r['per_second']:.0f} | {r['p50_ms']:.2f} "
            f"| {r['p99_ms']:.2f} | {r['cpu_us_per_grant']:.0f} |"
        )


if __name__ == "__main__":
    main()
