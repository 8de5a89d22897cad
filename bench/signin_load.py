"""Does a burst of sign-ins stall the event loop? /mcp and /health latency with and without one.

    .venv/bin/python bench/signin_load.py [--database-url URL] [--seconds 10] [--signers 8]

Gatehouse runs alone on core 1 (one worker, no access log); this driver on core 0. Two probes
run at a fixed rate, open loop (each request is timed from when it was due, so a stalled loop
shows as latency, not as fewer requests): a `tools/call` of `whoami` on /mcp and a GET /health.
They run first alone, then while `--signers` loops sign in as fast as they can (GET /sign-in,
POST /sign-in with the right password), which keeps every password-hash slot busy
(PASSWORD_HASH_CONCURRENCY defaults to the core count) and the gate's queue full. The sign-in
rate limits are raised for the run so the load reaches the hasher.

Reported: p50/p99 per probe, alone and under the sign-in load, their ratio (target: p99 within
1.5x), and the sign-ins completed per second (and refused with 503 by the gate).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import MODERN, routing_headers, tools_call_body  # noqa: E402
from run import (  # noqa: E402
    BENCH,
    CSRF_RE,
    LOAD_CORE,
    PASSWORD,
    PYTHON,
    ROOT,
    SERVER_CORE,
    Server,
    gatehouse_env,
    get_token,
    sign_up,
)

BASE = "http://127.0.0.1:8101"
RAISED_LIMIT = "100000 per minute"
LATE = 0.003  # seconds: a loop wake-up this late is reported


def _request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1:8101"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class Probe:
    """Requests at a fixed rate over a few keep-alive connections; latency from the due time."""

    def __init__(self, name: str, raw: bytes, rate: float) -> None:
        self.name, self.raw, self.interval = name, raw, 1.0 / rate
        self.latencies: list[float] = []
        self.failures = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def _exchange(self) -> bytes:
        if self._idle:
            reader, writer = self._idle.pop()
        else:
            reader, writer = await asyncio.open_connection("127.0.0.1", 8101)
        writer.write(self.raw)
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        self._idle.append((reader, writer))
        return head

    async def _one(self, due: float) -> None:
        try:
            head = await self._exchange()
        except (asyncio.IncompleteReadError, ConnectionError):
            # A pooled connection the server closed after its keep-alive timeout: once more on
            # a new one (still timed from when the request was due).
            self._idle.clear()
            head = await self._exchange()
        self.latencies.append(time.perf_counter() - due)
        if not head.startswith(b"HTTP/1.1 200"):
            self.failures += 1

    async def run(self, seconds: float) -> None:
        # Connections left idle since the last run may have met the server's keep-alive timeout.
        for _, writer in self._idle:
            writer.close()
        self._idle = []
        self.latencies, self.failures = [], 0
        start = time.perf_counter()
        tasks = []
        n = 0
        while (due := start + n * self.interval) < start + seconds:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(self._one(due)))
            n += 1
        await asyncio.gather(*tasks)

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "requests": len(ordered),
            "failures": self.failures,
            "p50_ms": statistics.median(ordered) * 1000,
            "p99_ms": ordered[int(len(ordered) * 0.99) - 1] * 1000,
        }


async def _sign_in_loop(email: str, deadline: float, counts: dict[str, int]) -> None:
    async with httpx.AsyncClient(base_url=BASE, timeout=60) as browser:
        while time.time() < deadline:
            browser.cookies.clear()
            page = (await browser.get("/sign-in")).text
            form = {
                "email": email,
                "password": PASSWORD,
                "csrf_token": CSRF_RE.search(page).group(1),  # type: ignore[union-attr]
            }
            answer = await browser.post("/sign-in", data=form)
            key = "signed_in" if answer.status_code == 303 else str(answer.status_code)
            counts[key] = counts.get(key, 0) + 1


def _signers(email: str, signers: int, seconds: float, out: Any) -> None:
    """The sign-in load, in its own process: its HTTP client work must not delay the probes'
    event loop (which would show as latency that is the driver's, not the server's), and at the
    lowest priority, so that on the shared load core the probes' process runs first."""
    os.nice(19)

    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        deadline = time.time() + seconds
        await asyncio.gather(*(_sign_in_loop(email, deadline, counts) for _ in range(signers)))
        return counts

    out.put(asyncio.run(run()))


async def _phases(token: str, email: str, seconds: float, signers: int, rate: float) -> Any:
    body = json.dumps(tools_call_body(MODERN), separators=(",", ":")).encode()
    mcp_headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {token}",
        "MCP-Protocol-Version": MODERN,
        **routing_headers(MODERN),
    }
    probes = [
        Probe("/mcp", _request("POST", "/mcp", mcp_headers, body), rate),
        Probe("/health", _request("GET", "/health", {}), rate),
    ]
    for probe in probes:  # warm up the connections and the token cache
        await probe.run(1.0)
    alone = []
    windows = {"alone": time.time()}
    for probe in probes:
        await probe.run(seconds)
        alone.append(probe.summary())
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    load_seconds = 2.0 + len(probes) * seconds
    load = context.Process(target=_signers, args=(email, signers, load_seconds, out))
    load.start()
    await asyncio.sleep(2.0)  # the hasher saturated, the gate's queue full
    loaded = []
    windows["loaded"] = time.time()
    for probe in probes:
        await probe.run(seconds)
        loaded.append(probe.summary())
    windows["end"] = time.time()
    counts = await asyncio.to_thread(out.get)
    await asyncio.to_thread(load.join)
    rates = {k: v / load_seconds for k, v in counts.items()}
    rows = [(p.name, a, b) for p, a, b in zip(probes, alone, loaded, strict=True)]
    return rows, rates, windows


def measure(
    database_url: str = "",
    *,
    seconds: float,
    signers: int,
    rate: float,
    cores: str = SERVER_CORE,
    hash_concurrency: int | None = None,
    hash_priority: str = "",
) -> Any:
    work = Path(tempfile.mkdtemp(prefix="gatehouse-signin-load-"))
    extra = {"PASSWORD_HASH_CONCURRENCY": str(hash_concurrency)} if hash_concurrency else {}
    if hash_priority:
        extra["PASSWORD_HASH_PRIORITY"] = hash_priority
    lag_file = work / "loop-lag.json"
    env = gatehouse_env(
        work,
        database_url,
        SIGNIN_LIMIT_IP=RAISED_LIMIT,
        SIGNIN_LIMIT_ACCOUNT=RAISED_LIMIT,
        SIGNIN_LIMIT_ACCOUNT_TOTAL=RAISED_LIMIT,
        SIGNUP_LIMIT_IP=RAISED_LIMIT,
        **extra,
    )
    subprocess.run([PYTHON, "-m", "app", "db", "upgrade"], cwd=ROOT, env=env, check=True)
    argv = [PYTHON, "-m", "app", "serve", "--no-access-log"]
    # bench/lagprobe on the server's PYTHONPATH: its event loop's late wake-ups (see there).
    probe_path = os.pathsep.join(filter(None, [str(BENCH / "lagprobe"), env.get("PYTHONPATH")]))
    server_env = {**env, "PYTHONPATH": probe_path, "LOOP_LAG_FILE": str(lag_file)}
    server = Server("gatehouse", argv, 8101, server_env, work / "gatehouse.log", cores=cores)
    try:
        token = get_token(BASE, f"{BASE}/mcp")
        with httpx.Client(base_url=BASE, timeout=30) as browser:
            email = sign_up(browser)
        rows, rates, windows = asyncio.run(_phases(token, email, seconds, signers, rate))
    finally:
        server.stop()
    lags = json.loads(lag_file.read_text()) if lag_file.exists() else []
    return rows, rates, _lag_summary(lags, windows)


def _lag_summary(lags: list[list[float]], windows: dict[str, float]) -> dict[str, Any]:
    """Per phase: the loop's wake-ups late by more than 3 ms, and how many of those the loop
    thread spent running (a long callback) rather than not running (not scheduled, or waiting
    for the GIL)."""
    phases = {"alone": (windows["alone"], windows["loaded"])}
    phases["under sign-ins"] = (windows["loaded"], windows["end"])
    summary: dict[str, Any] = {}
    for name, (start, stop) in phases.items():
        late = [(lag, cpu) for at, lag, cpu in lags if start <= at < stop and lag > LATE]
        summary[name] = {
            "late": len(late),
            "running": sum(1 for lag, cpu in late if cpu > 0.6 * lag),
            "lost_ms": 1000 * sum(lag for lag, _ in late),
            "max_ms": 1000 * max((lag for lag, _ in late), default=0.0),
        }
    return summary


def table(results: Any) -> list[str]:
    """The results as Markdown: the probes, the sign-in rate, the server loop's late wake-ups."""
    rows, rates, lags = results
    lines = [
        "| probe | p50 ms alone | p99 ms alone | p50 ms under sign-ins | p99 ms under sign-ins "
        "| p99 ratio (≤ 1.5×) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, alone, loaded in rows:
        lines.append(
            f"| {name} | {alone['p50_ms']:.2f} | {alone['p99_ms']:.2f} | {loaded['p50_ms']:.2f} "
            f"| {loaded['p99_ms']:.2f} | {loaded['p99_ms'] / alone['p99_ms']:.2f}× |"
        )
    done = ", ".join(f"{k} {v:.1f}/s" for k, v in sorted(rates.items()))
    lines += ["", f"Sign-in answers during the loaded runs: {done}.", ""]
    lines += [
        f"The server's event loop, wake-ups more than {LATE * 1000:.0f} ms late "
        '(bench/lagprobe; "running": the loop thread was busy meanwhile, not descheduled):',
        "",
        "| phase | late wake-ups | of which running | time lost ms | longest ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in lags.items():
        lines.append(
            f"| {name} | {row['late']} | {row['running']} | {row['lost_ms']:.0f} "
            f"| {row['max_ms']:.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--signers", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200, help="requests/s per probe")
    parser.add_argument(
        "--server-cores",
        dest="cores",
        default=SERVER_CORE,
        help="the cores the server may use (taskset -c)",
    )
    parser.add_argument(
        "--hash-concurrency", type=int, help="PASSWORD_HASH_CONCURRENCY (default: the server's)"
    )
    parser.add_argument(
        "--hash-priority",
        default="",
        help="PASSWORD_HASH_PRIORITY: low, idle or auto (default: auto)",
    )
    args = parser.parse_args()
    os.sched_setaffinity(0, {int(LOAD_CORE)})
    # Each option's name is measure()'s parameter name.
    print("\n".join(table(measure(**vars(args)))))


if __name__ == "__main__":
    main()
