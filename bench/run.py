"""Benchmark one authenticated `tools/call` of `whoami`: Gatehouse vs the peer vs the ceiling.

    .venv/bin/python bench/run.py                      # SQLite, 10 s per run, 16 connections
    .venv/bin/python bench/run.py --database-url postgresql://postgres@127.0.0.1:5432/bench

Every server runs alone, pinned to core 1 (`taskset -c 1`), one worker; wrk runs on core 0.
Gatehouse gets a real access token through its own OAuth flow (sign up, register, authorize,
consent, code exchange with PKCE); the peer and the ceiling verify that same token against
Gatehouse's published JWKS with the same issuer and audience. Everything listens on 127.0.0.1
and every load run stops by itself. See bench/README.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import HANDSHAKE, MODERN, routing_headers, tools_call_body  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PYTHON = sys.executable
SERVER_CORE = "1"
LOAD_CORE = "0"
CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
PENDING_RE = re.compile(r'name="pending" value="([^"]+)"')
REDIRECT_URI = "http://127.0.0.1:33418/callback"
PASSWORD = "correct horse battery staple"

LUA = r"""
wrk.method = "POST"
wrk.body = [==[%(body)s]==]
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "Bearer %(token)s"
wrk.headers["MCP-Protocol-Version"] = "%(version)s"
%(routing)s

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\nRESULT {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
"""


class Server:
    def __init__(
        self,
        name: str,
        argv: list[str],
        port: int,
        env: dict[str, str],
        log: Path,
        *,
        cwd: Path = ROOT,
        cores: str = SERVER_CORE,
    ):
        self.name, self.port = name, port
        if _listening(port):
            raise SystemExit(f"port {port} is already in use: stop whatever listens there first")
        self.log = log.open("w")
        self.proc = subprocess.Popen(
            ["taskset", "-c", cores, *argv],
            cwd=cwd,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited early; see {log}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/mcp", timeout=1)
                if self.proc.poll() is not None:
                    raise SystemExit(f"{name} exited; see {log}")
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.proc.kill()
        self.proc.wait()
        raise SystemExit(f"{name} did not start; see {log}")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        deadline = time.monotonic() + 10
        while _listening(self.port) and time.monotonic() < deadline:
            time.sleep(0.1)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def gatehouse_env(work: Path, database_url: str = "", **extra: str) -> dict[str, str]:
    """The environment every bench runs Gatehouse with: on 127.0.0.1:8101, its own VAR_DIR, the
    database given (default a fresh SQLite file in `work`), no OpenTelemetry export."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return env | {
        "HOST": "127.0.0.1",
        "PORT": "8101",
        "PUBLIC_URL": "http://127.0.0.1:8101",
        "VAR_DIR": str(work / "var"),
        "DATABASE_URL": database_url or f"sqlite+aiosqlite:///{work}/gatehouse.db",
        "GATEHOUSE_ENV": "development",
        **extra,
    }


def token_and_keys(
    argv: list[str], port: int, env: dict[str, str], work: Path
) -> tuple[str, list[str]]:
    """A real token from Gatehouse's OAuth flow (a Gatehouse started for it, then stopped), and
    the arguments the peers and ceilings verify it with: its keys, issuer and audience."""
    base = f"http://127.0.0.1:{port}"
    audience = f"{base}/mcp"
    gatehouse = Server("gatehouse", argv, port, env, work / "gatehouse.log")
    try:
        token = get_token(base, audience)
        (work / "jwks.json").write_text(httpx.get(f"{base}/jwks.json").text)
    finally:
        gatehouse.stop()
    return token, ["--jwks", str(work / "jwks.json"), "--issuer", base, "--audience", audience]


def sign_up(browser: httpx.Client, email: str = "") -> str:
    """A new account through the sign-up form; its email (password: PASSWORD)."""
    email = email or f"bench-{secrets.token_hex(4)}@example.com"
    page = browser.get("/sign-up").text
    form = {
        "email": email,
        "password": PASSWORD,
        "name": "Bench User",
        "csrf_token": CSRF_RE.search(page).group(1),  # type: ignore[union-attr]
    }
    assert browser.post("/sign-up", data=form).status_code == 303
    return email


def register_public_client(browser: httpx.Client) -> str:
    """A public client (PKCE, no secret) with the bench's redirect URI; its client_id."""
    client = browser.post(
        "/register",
        json={
            "client_name": "Bench Client",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        },
    ).json()
    return str(client["client_id"])


def get_token(base: str, resource: str) -> str:
    """The whole OAuth flow, as a browser and a public client would run it."""
    with httpx.Client(base_url=base, timeout=10) as browser:
        sign_up(browser)
        client_id = register_public_client(browser)
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "state": "bench",
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
            "scope": "mcp mcp:write",
            "resource": resource,
        }
        consent = browser.get("/authorize", params=params)
        approved = browser.post(
            "/consent",
            data={
                "csrf_token": CSRF_RE.search(consent.text).group(1),  # type: ignore[union-attr]
                "pending": PENDING_RE.search(consent.text).group(1),  # type: ignore[union-attr]
                "action": "approve",
                "scope": "mcp:write",
            },
        )
        query = parse_qs(urlsplit(approved.headers["location"]).query)
        token = browser.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": client_id,
            },
        ).json()
        return str(token["access_token"])


def check_once(port: int, token: str, generation: str) -> str:
    """One request before the load: it must succeed and carry whoami's structured result."""
    response = httpx.post(
        f"http://127.0.0.1:{port}/mcp",
        json=tools_call_body(generation),
        headers={
            "Accept": "application/json, text/event-stream",
            "Authorization": f"Bearer {token}",
            "MCP-Protocol-Version": generation,
            **routing_headers(generation),
        },
    )
    text = response.text
    if response.status_code != 200 or '"structuredContent"' not in text or '"error"' in text:
        raise SystemExit(f"port {port} {generation}: {response.status_code} {text[:500]}")
    return response.headers.get("content-type", "")


def wrk(port: int, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            LOAD_CORE,
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}/mcp",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result: dict[str, Any] = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def record_full_collections(gc_file: Path, runs: list[dict[str, Any]]) -> None:
    """Add to each run the full collections (bench/gcprobe) that ended inside its window."""
    if not gc_file.exists():
        raise SystemExit(f"{gc_file} was not written: the server did not exit cleanly")
    events = json.loads(gc_file.read_text())
    for run in runs:
        start, end = run["window"]
        pauses = [
            seconds * 1000
            for at, generation, seconds in events
            if generation == 2 and start <= at <= end
        ]
        run["gc_full_count"] = len(pauses)
        run["gc_full_ms_max"] = max(pauses, default=0.0)
        run["gc_full_ms_total"] = sum(pauses)


def fresh_database(url: str) -> str:
    """Drop and create the database `url` names (psql on the same server)."""
    name = url.rsplit("/", 1)[1]
    server = url.rsplit("/", 1)[0] + "/postgres"
    for sql in (f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'):
        subprocess.run(["psql", server, "-qc", sql], check=True, capture_output=True)
    return url


def print_report(
    args: argparse.Namespace,
    results: dict[str, dict[str, dict[str, Any]]],
    generations: list[str],
    load_before: list[str],
) -> None:
    import report
    import signin_load
    import token_bench

    tokens = token_bench.measure(
        fresh_database(args.token_database_url), seconds=args.seconds, connections=16, codes=1500
    )
    signin = signin_load.measure(args.database_url, seconds=args.seconds, signers=8, rate=200)
    setup = (
        f"wrk -t1 -c{args.connections}, {args.seconds} s runs after {args.warmup} s of warm-up, "
        f"median of {args.rounds} rounds; each server alone on core {SERVER_CORE}, one worker "
        f"(uvicorn, uvloop, httptools, no access log), wrk on core {LOAD_CORE}."
    )
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    print()
    print(
        report.render(
            results,
            generations,
            setup=setup,
            tokens=tokens,
            signin=signin,
            load=(" ".join(load_before), " ".join(load_after)),
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of each measured run")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured load before each run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=1, help="repeat and take the median")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--targets", default="gatehouse,peer,ceiling,ceiling-raw")
    parser.add_argument("--generations", default=f"{MODERN},{HANDSHAKE}")
    parser.add_argument(
        "--serve-args", default="", help="extra arguments for `python -m app serve`"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:DIR[:ARGS]",
        help="another Gatehouse to compare, e.g. a checkout of an older commit: "
        "`--variant base:/tmp/gh-base` (add NAME to --targets)",
    )
    parser.add_argument(
        "--aggregate",
        choices=("median", "best"),
        default="median",
        help="across rounds: the median, or the best (highest req/s, lowest latency and CPU)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--report",
        action="store_true",
        help="the whole table of docs/PERFORMANCE.md: every /mcp target (3 rounds unless "
        "--rounds), the token endpoint on PostgreSQL (--token-database-url) and the sign-in "
        "load, ratios first, with the spread across rounds",
    )
    parser.add_argument(
        "--token-database-url",
        default="postgresql://postgres@127.0.0.1:5432/bench",
        help="with --report: an empty PostgreSQL database for the token endpoint run "
        "(dropped and created again)",
    )
    parser.add_argument(
        "--gc-pauses",
        action="store_true",
        help="record each server's garbage collections (bench/gcprobe) and report the full "
        "ones that fell inside the measured runs",
    )
    args = parser.parse_args()
    if args.report:
        args.targets = "gatehouse,peer,peer-sse,ceiling,ceiling-raw"
        args.rounds = max(args.rounds, 3)
        args.serve_args = args.serve_args or "--no-access-log"  # the others keep no access log
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    if not shutil.which("wrk") or not shutil.which("taskset"):
        raise SystemExit("needs wrk and taskset (apt-get install -y wrk util-linux)")

    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    gh_env = gatehouse_env(work, args.database_url)
    subprocess.run([PYTHON, "-m", "app", "db", "upgrade"], cwd=ROOT, env=gh_env, check=True)
    generations = args.generations.split(",")
    targets = args.targets.split(",")
    argv = {
        "gatehouse": [PYTHON, "-m", "app", "serve", *args.serve_args.split()],
        "peer": [PYTHON, str(BENCH / "peer_server.py"), "--port", "8102"],
        "peer-sse": [PYTHON, str(BENCH / "peer_server.py"), "--port", "8104", "--sse"],
        "ceiling": [PYTHON, str(BENCH / "ceiling_server.py"), "--port", "8103"],
        "ceiling-raw": [PYTHON, str(BENCH / "ceiling_server.py"), "--port", "8105", "--no-verify"],
    }
    ports = {
        "gatehouse": 8101,
        "peer": 8102,
        "peer-sse": 8104,
        "ceiling": 8103,
        "ceiling-raw": 8105,
    }
    cwd = dict.fromkeys(ports, ROOT)
    for spec in args.variant:
        name, directory, *extra = spec.split(":", 2)
        argv[name] = [PYTHON, "-m", "app", "serve", *(extra[0].split() if extra else [])]
        ports[name], cwd[name] = 8101, Path(directory)

    token, shared = token_and_keys(argv["gatehouse"], 8101, gh_env, work)
    for name in ("peer", "peer-sse", "ceiling", "ceiling-raw"):
        argv[name] += shared

    scripts = {}
    for generation in generations:
        body = json.dumps(tools_call_body(generation), separators=(",", ":"))
        script = work / f"{generation}.lua"
        routing = "".join(
            f'wrk.headers["{k}"] = "{v}"\n' for k, v in routing_headers(generation).items()
        )
        script.write_text(
            LUA % {"body": body, "token": token, "version": generation, "routing": routing}
        )
        scripts[generation] = script

    results: dict[str, dict[str, dict[str, Any]]] = {t: {} for t in targets}
    for round_ in range(args.rounds):
        for target in targets:
            server_env, gc_file = gh_env, work / f"gc-{target}-{round_}.json"
            if args.gc_pauses:
                path = os.pathsep.join(
                    filter(None, [str(BENCH / "gcprobe"), env.get("PYTHONPATH")])
                )
                server_env = {**gh_env, "PYTHONPATH": path, "GC_PAUSES_FILE": str(gc_file)}
            server = Server(
                target,
                argv[target],
                ports[target],
                server_env,
                work / f"{target}.log",
                cwd=cwd[target],
            )
            measured: list[dict[str, Any]] = []
            try:
                for generation in generations:
                    kind = check_once(ports[target], token, generation)
                    wrk(ports[target], scripts[generation], args.warmup, args.connections)
                    cpu = server.cpu_seconds()
                    started = time.time()
                    run = wrk(ports[target], scripts[generation], args.seconds, args.connections)
                    run["window"] = (started, time.time())
                    measured.append(run)
                    used = server.cpu_seconds() - cpu
                    run["cpu_us_per_request"] = used / max(run["requests"], 1) * 1e6
                    run["rss_kib"] = server.rss_kib()
                    run["content_type"] = kind
                    results[target].setdefault(generation, {}).setdefault("runs", []).append(run)
                    print(
                        f"{target:9} {generation}  {run['rps']:8.0f} req/s  "
                        f"p50 {run['p50_us'] / 1000:6.2f} ms  p99 {run['p99_us'] / 1000:6.2f} ms  "
                        f"CPU {run['cpu_us_per_request']:6.0f} µs/req  "
                        f"RSS {run['rss_kib'] / 1024:5.1f} MiB  errors {run['status_errors']}"
                        f"/{run['socket_errors']}  ({kind})",
                        flush=True,
                    )
            finally:
                server.stop()
            if args.gc_pauses:
                record_full_collections(gc_file, measured)

    def median(target: str, generation: str, key: str) -> float:
        values = [r[key] for r in results[target][generation]["runs"]]
        if args.aggregate == "best":
            return max(values) if key == "rps" else min(values)
        return statistics.median(values)

    print()
    print(
        f"wrk -t1 -c{args.connections} -d{args.seconds}s, server on core {SERVER_CORE}, "
        f"load on core {LOAD_CORE}, {args.aggregate} of {args.rounds} round(s)"
    )
    print()
    print(
        "| generation | server | req/s | p50 ms | p99 ms | CPU µs/req | RSS MiB "
        "| req/s ÷ peer | p99 ÷ peer | CPU ÷ peer |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for generation in generations:
        for target in targets:
            rps, p50, p99, cpu, rss = (
                median(target, generation, k)
                for k in ("rps", "p50_us", "p99_us", "cpu_us_per_request", "rss_kib")
            )
            ratios = ["–", "–", "–"]
            if "peer" in results:
                ratios = [
                    f"{rps / median('peer', generation, 'rps'):.2f}×",
                    f"{p99 / median('peer', generation, 'p99_us'):.2f}×",
                    f"{cpu / median('peer', generation, 'cpu_us_per_request'):.2f}×",
                ]
            print(
                f"| {generation} | {target} | {rps:.0f} | {p50 / 1000:.2f} | {p99 / 1000:.2f} "
                f"| {cpu:.0f} | {rss / 1024:.1f} | " + " | ".join(ratios) + " |"
            )
    if args.gc_pauses:
        print()
        print("Full (generation 2) collections inside the measured runs; each one pauses every")
        print(f"request in flight ({args.aggregate} of {args.rounds} round(s)):")
        print()
        print("| generation | server | full collections per run | longest ms | total ms |")
        print("|---|---|---:|---:|---:|")
        for generation in generations:
            for target in targets:
                count, longest, total = (
                    statistics.median(r[k] for r in results[target][generation]["runs"])
                    for k in ("gc_full_count", "gc_full_ms_max", "gc_full_ms_total")
                )
                print(f"| {generation} | {target} | {count:.0f} | {longest:.1f} | {total:.0f} |")
    if args.report:
        print_report(args, results, generations, load_before)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": vars(args) | {"json": str(args.json)}, "results": results}, indent=2
            )
        )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
