"""docker-compose.yml as written, brought up with podman-compose on the bridge network it makes:
the default layout (postgres → migrate → gatehouse, traces to Jaeger's OTLP port), then the
`split` profile on the same project (auth + two mcp replicas behind Caddy).

The third-party images are local stand-ins under the names the file uses (tests/deploy/standins).
Podman 4.3 (Debian 12's) cannot wait for `service_healthy`, cannot `start` a container whose
dependency is a finished one-shot (`migrate`) that itself depends on a running one ("not found in
input list"), and this sandbox has no systemd to run health checks. So each `up --no-deps` brings
up one step of the file's own order, and the test runs the health checks until they pass; README
"Run in production" tells admins the same."""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ROOT, TEST_SECRET_KEY, TEST_VAULT_KEYS, missing
from tests.deploy.podman_support import (
    Podman,
    free_port,
    podman_compose,
    port_is_free,
    sdk_client_journey,
)
from tests.helpers import PASSWORD, sign_up, unique_email
from tests.mcp.support import mcp_request, obtain_grant

pytestmark = pytest.mark.containers

JAEGER_PORTS = (4318, 16686)  # published by the compose file on 127.0.0.1 as they are
KEPT_VARIABLES = ("PATH", "HOME", "LANG", "TMPDIR", "XDG_RUNTIME_DIR", "GATEHOUSE_PODMAN_HOME")


@dataclass
class Stack:
    podman: Podman
    project: str
    env: dict[str, str]
    public: str = ""

    def container(self, service: str, index: int = 1) -> str:
        return f"{self.project}_{service}_{index}"

    def compose(self, *args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
        command = [podman_compose(), "-f", str(ROOT / "docker-compose.yml"), "-p", self.project]
        result = subprocess.run(
            [*command, *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, (
            f"podman-compose {' '.join(args)} exited {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
        return result.stdout + result.stderr

    def logs_on_failure(self, *containers: tuple[str, int]) -> AbstractContextManager[None]:
        return self.podman.logs_on_failure(*(self.container(*c) for c in containers))


def clean_environment(podman: Podman) -> dict[str, str]:
    """Only podman's own settings: nothing of this shell's DATABASE_URL, OTEL_*, REDIS_URL…
    reaches the compose file's ${…} variables."""
    kept = {
        k: v for k, v in podman.env.items() if k in KEPT_VARIABLES or k.startswith("CONTAINERS_")
    }
    return kept


@pytest.fixture(scope="module")
def stack(podman: Podman, gatehouse_image: str, standins: None) -> Iterator[Stack]:
    busy = [port for port in JAEGER_PORTS if not port_is_free(port)]
    if busy:
        missing("Jaeger's ports", f"127.0.0.1:{busy} are in use; the compose file publishes them")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {
        **clean_environment(podman),
        "GATEHOUSE_IMAGE": gatehouse_image,
        "POSTGRES_PASSWORD": secrets.token_urlsafe(18),
        "SECRET_KEY": TEST_SECRET_KEY,
        "VAULT_KEYS": TEST_VAULT_KEYS,
        # Loopback only: the file's "${GATEHOUSE_PORT:-8000}:8000" takes an address too.
        "GATEHOUSE_PORT": f"127.0.0.1:{port}",
        "PUBLIC_URL": public,
    }
    stack = Stack(podman, f"{podman.session}-stack", env, public)
    started = time.monotonic()
    try:
        stack.compose("up", "-d", "postgres", "jaeger")
        podman.healthy(stack.container("postgres"))
        stack.compose("up", "-d", "--no-deps", "migrate")
        assert podman.exit_code(stack.container("migrate")) == 0, podman.run(
            "logs", stack.container("migrate"), check=False
        ).stderr
        stack.compose("up", "-d", "--no-deps", "gatehouse")
        podman.healthy(stack.container("gatehouse"), timeout=180)
        podman.timed("compose default layout up", started)
        yield stack
    finally:
        subprocess.run(
            [podman_compose(), "-f", str(ROOT / "docker-compose.yml"), "-p", stack.project,
             "--profile", "split", "down", "-v", "-t", "2"],
            cwd=ROOT, env=env, capture_output=True, timeout=300, check=False,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        podman.remove_everything(stack.project)


def operations(service: str, wanted: str = "", timeout: float = 60) -> set[str]:
    """The span names the stack's Jaeger (stand-in) received from `service`, asked as one asks
    Jaeger; waits (the exporter sends in batches) until one contains `wanted`."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(
            "http://127.0.0.1:16686/api/traces", params={"service": service}, timeout=10
        )
        assert response.status_code == 200
        names = {
            span["operationName"] for trace in response.json()["data"] for span in trace["spans"]
        }
        if any(wanted in name for name in names) or time.monotonic() > deadline:
            return names
        time.sleep(1)


# -- the default layout ---------------------------------------------------------------------------


def test_the_default_layout_runs_its_services_on_its_own_bridge_network(stack: Stack) -> None:
    podman = stack.podman
    running = podman.run(
        "ps", "--filter", f"label=io.podman.compose.project={stack.project}",
        "--filter", "status=running", "--format", "{{.Names}}",
    ).stdout.split()  # fmt: skip
    assert sorted(running) == sorted(
        stack.container(s) for s in ("postgres", "jaeger", "gatehouse")
    )
    finished = podman.run(
        "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", stack.container("migrate")
    ).stdout.split()
    assert finished == ["exited", "0"]
    networks = podman.run(
        "inspect", "--format", "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        stack.container("gatehouse"),
    ).stdout.split()  # fmt: skip
    assert networks == [f"{stack.project}_default"]
    subnet = podman.run(
        "network", "inspect", "--format", "{{range .Subnets}}{{.Subnet}}{{end}}", networks[0]
    ).stdout.strip()
    assert subnet == "172.30.0.0/24"  # GATEHOUSE_SUBNET's default, as the file says
    ports = podman.run("port", stack.container("gatehouse")).stdout.split()
    assert ports == ["8000/tcp", "->", f"127.0.0.1:{urlsplit(stack.public).port}"]
    logs = podman.run("logs", stack.container("gatehouse"))
    report = (logs.stdout + logs.stderr).splitlines()
    assert "  database:    postgresql gatehouse@postgres:5432/gatehouse" in report
    telemetry = [line for line in report if line.startswith("  telemetry:")]
    assert len(telemetry) == 1
    assert "http://jaeger:4318" in telemetry[0]


async def test_a_first_user_made_with_the_cli_signs_in_with_the_mcp_sdk_client(
    stack: Stack, browser: Any
) -> None:
    email = unique_email("admin")
    out = stack.compose(
        "exec", "-T", "gatehouse", "gatehouse", "users", "create", "--email", email,
        "--password", PASSWORD,
    )  # fmt: skip
    assert f"created {email}" in out
    me = await sdk_client_journey(stack.public, browser, email)
    assert me["email"] == email
    assert me["scopes"] == ["mcp", "mcp:write"]


def test_the_stack_sends_its_traces_to_jaeger(stack: Stack) -> None:
    httpx.get(f"{stack.public}/.well-known/oauth-authorization-server", timeout=10)
    wanted = "GET /.well-known/oauth-authorization-server"
    names = operations("gatehouse", wanted)
    assert wanted in names, names
    services = httpx.get("http://127.0.0.1:16686/api/services", timeout=10).json()["data"]
    assert "gatehouse" in services


# -- the split profile ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def split(stack: Stack) -> Stack:
    podman = stack.podman
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {
        **stack.env,
        "PUBLIC_URL": public,
        "PROXY_HTTP_PORT": f"127.0.0.1:{port}",
        "PROXY_HTTPS_PORT": f"127.0.0.1:{free_port()}",
    }
    split = Stack(podman, stack.project, env, public)
    started = time.monotonic()
    split.compose("--profile", "split", "up", "-d", "--no-deps", "auth")
    podman.healthy(split.container("auth"), timeout=180)
    split.compose("--profile", "split", "up", "-d", "--no-deps", "mcp")
    for replica in (1, 2):
        podman.healthy(split.container("mcp", replica), timeout=180)
    split.compose("--profile", "split", "up", "-d", "--no-deps", "proxy")
    podman.healthy(split.container("proxy"))
    podman.timed("compose split layout up", started)
    return split


def test_the_split_layout_names_one_issuer_through_the_proxy(split: Stack) -> None:
    public = split.public
    with httpx.Client(base_url=public, timeout=30) as web:
        for _ in range(4):  # whichever replica answers, the same
            resource = web.get("/.well-known/oauth-protected-resource/mcp").json()
            assert resource["resource"] == f"{public}/mcp"
            assert resource["authorization_servers"] == [public]
        assert web.get("/.well-known/oauth-authorization-server").json()["issuer"] == public
        refused = web.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"})
        assert refused.status_code == 401
        assert (
            f'resource_metadata="{public}/.well-known/oauth-protected-resource/mcp"'
            in (refused.headers["www-authenticate"])
        )
    for replica in (1, 2):
        logs = split.podman.run("logs", split.container("mcp", replica))
        report = (logs.stdout + logs.stderr).splitlines()
        assert "  role:        mcp" in report
        assert f"  trusts:      tokens of {public}" in report
        assert "  revocation:  polls the database (a revoked grant is refused within 5 s)" in report


async def test_the_mcp_sdk_client_works_through_the_proxy(split: Stack, browser: Any) -> None:
    with split.logs_on_failure(("proxy", 1), ("auth", 1), ("mcp", 1), ("mcp", 2)):
        async with httpx.AsyncClient(base_url=split.public, timeout=30) as web:
            email = await sign_up(web)
        me = await sdk_client_journey(split.public, browser, email)
    assert me["email"] == email
    # Both roles send their traces to Jaeger too.
    assert "POST /mcp" in operations("gatehouse-mcp", "POST /mcp")
    assert "POST /token" in operations("gatehouse-auth", "POST /token")


# Runs inside a replica: one request to it before the revocation, then (on a line on stdin) the
# same request every 0.2 s until it is refused; prints what it saw.
REPLICA_PROBE = """
import json, sys, time, urllib.error, urllib.request
body, headers = json.loads(sys.argv[1])
def ask():
    request = urllib.request.Request("http://127.0.0.1:8000/mcp", data=body.encode(),
                                     headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, ""
    except urllib.error.HTTPError as refused:
        return refused.code, refused.headers.get("www-authenticate", "")
print(json.dumps({"before": ask()[0]}), flush=True)
sys.stdin.readline()
start = time.monotonic()
while True:
    status, challenge = ask()
    if status != 200 or time.monotonic() - start > 15:
        break
    time.sleep(0.2)
print(json.dumps({"status": status, "after": time.monotonic() - start,
                  "challenge": challenge}), flush=True)
"""


async def test_a_revocation_on_auth_is_seen_by_both_replicas_within_5_seconds(
    split: Stack,
) -> None:
    async with httpx.AsyncClient(base_url=split.public, timeout=30) as web:
        grant = await obtain_grant(web)
    body, headers = mcp_request(
        "tools/call", {"name": "whoami", "arguments": {}}, token=grant.access_token
    )
    headers["Host"] = urlsplit(split.public).netloc
    request = json.dumps([json.dumps(body), headers])
    probes = [
        subprocess.Popen(
            [
                "podman",
                "exec",
                "-i",
                split.container("mcp", replica),
                "python",
                "-c",
                REPLICA_PROBE,
                request,
            ],
            env=split.podman.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for replica in (1, 2)
    ]
    try:
        for probe in probes:
            assert probe.stdout is not None
            assert json.loads(probe.stdout.readline()) == {"before": 200}
        async with httpx.AsyncClient(base_url=split.public, timeout=30) as web:
            revoked = await web.post(
                "/revoke", data={"token": grant.refresh_token, "client_id": grant.client_id}
            )
        assert revoked.status_code == 200
        for probe in probes:
            assert probe.stdin is not None
            probe.stdin.write("revoked\n")
            probe.stdin.flush()
        seen = []
        for probe in probes:
            assert probe.stdout is not None
            seen.append(json.loads(probe.stdout.readline()))
            probe.wait(timeout=30)
    finally:
        for probe in probes:
            if probe.poll() is None:
                probe.kill()
                probe.wait()
            for pipe in (probe.stdin, probe.stdout):
                if pipe is not None:
                    pipe.close()
    for replica in seen:
        assert replica["status"] == 401, replica
        assert (
            'error_description="the grant was revoked or the user disabled"'
            in (replica["challenge"])
        )
        assert replica["after"] <= 5.0 + 1.0, replica  # the design's bound, plus slack
