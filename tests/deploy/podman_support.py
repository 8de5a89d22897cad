"""Podman for the container tests: its private configuration (deploy/podman/env.sh), the locally
bootstrapped base image, the stand-ins for the third-party images docker-compose.yml names, and
the clean-up of everything a test session creates (all named with one unique prefix)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy" / "podman"
STANDINS = Path(__file__).with_name("standins")
RECIPE_LABEL = "org.gatehouse.recipe"
# Every container, pod, network and volume a session makes starts with this, then its own id.
PREFIX = "ghtest"
# The base image the Dockerfile builds on, made by deploy/podman/base-image.sh.
BASE_IMAGE = "docker.io/library/python:3.11-slim"
PYTHON_VERSION = "3.11"
# What the session's container work took, and the image's size: printed at the end of the run.
TIMINGS: dict[str, float] = {}


def qualified(image: str) -> str:
    """docker.io's spelling of a short image name, as podman stores it (postgres:17 →
    docker.io/library/postgres:17), so no short-name lookup is needed."""
    first = image.split("/", 1)[0]
    if "/" in image and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}"


def compose_images() -> dict[str, str]:
    """The third-party images docker-compose.yml names, by service."""
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    return {name: qualified(services[name]["image"]) for name in ("postgres", "jaeger", "proxy")}


def podman_environment() -> dict[str, str]:
    """The environment deploy/podman/env.sh sets up (it writes the configuration files too)."""
    out = subprocess.run(
        ["bash", "-c", f'. "{DEPLOY / "env.sh"}" && env -0'],
        capture_output=True,
        check=True,
        env=os.environ,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class Podman:
    env: dict[str, str]
    session: str  # this session's prefix: PREFIX + a unique id
    timings: dict[str, float] = field(default_factory=lambda: TIMINGS)

    @property
    def home(self) -> Path:
        return Path(self.env["GATEHOUSE_PODMAN_HOME"])

    def run(
        self, *args: str, check: bool = True, timeout: float = 900, **env: str
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", *args],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"podman {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def label(self, image: str, name: str) -> str:
        result = self.run(
            "image", "inspect", "--format", f'{{{{index .Labels "{name}"}}}}', image, check=False
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    def image_id(self, image: str) -> str:
        return self.run("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()

    # -- images -----------------------------------------------------------------------------

    def timed(self, what: str, started: float) -> None:
        self.timings[what] = round(self.timings.get(what, 0) + time.monotonic() - started, 1)

    def base_image(self) -> None:
        started = time.monotonic()
        result = subprocess.run(
            [str(DEPLOY / "base-image.sh")],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=900,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, f"base image:\n{result.stdout}\n{result.stderr}"
        self.timed("base image", started)

    def standin(self, name: str, image: str, **build_args: str) -> None:
        """Build tests/deploy/standins/<name> as `image`, unless an image of the same recipe (its
        files, the build arguments and the base image) is there already."""
        context = STANDINS / name
        files = {p.name: p.read_bytes() for p in sorted(context.iterdir()) if p.is_file()}
        if name == "jaeger":  # the tests' own OTLP receiver plays Jaeger's collector
            receiver = ROOT / "tests" / "telemetry" / "otlp_receiver.py"
            files[receiver.name] = receiver.read_bytes()
        digest = hashlib.sha256(self.image_id(BASE_IMAGE).encode())
        for file_name, content in files.items():
            digest.update(file_name.encode() + b"\0" + content + b"\0")
        digest.update(json.dumps(build_args, sort_keys=True).encode())
        recipe = digest.hexdigest()[:16]
        if self.label(image, RECIPE_LABEL) == recipe:
            return
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"{self.session}-{name}-") as tmp:
            for file_name, content in files.items():
                (Path(tmp) / file_name).write_bytes(content)
                (Path(tmp) / file_name).chmod(0o755 if file_name.endswith(".sh") else 0o644)
            args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
            # One layer: the stand-ins are cached whole by their recipe's label.
            self.run(
                "build", "--pull=never", "--network=host", "--format=docker", "--layers=false",
                f"--label={RECIPE_LABEL}={recipe}", *args, "-t", image, tmp,
            )  # fmt: skip
        self.timed(f"stand-in {name}", started)

    def standins(self) -> None:
        images = compose_images()
        self.standin("postgres", images["postgres"])
        self.standin("caddy", images["proxy"])
        self.standin("jaeger", images["jaeger"], OTEL_PROTO_VERSION=version("opentelemetry-proto"))

    def build_gatehouse(self, tag: str) -> None:
        """The real Dockerfile, built as the issue's recipe says (docker format: podman keeps
        HEALTHCHECK only there)."""
        started = time.monotonic()
        self.run(
            "build", "--pull=never", "--network=host", "--format=docker",
            f"--build-arg=PYTHON_VERSION={PYTHON_VERSION}", "-t", tag, str(ROOT),
            timeout=1800,
        )  # fmt: skip
        self.timed("gatehouse image", started)

    # -- health and clean-up ----------------------------------------------------------------

    def healthy(self, container: str, timeout: float = 120) -> None:
        """Run the container's health check until it passes: systemd's timers do this where
        podman has them; this sandbox has no systemd."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.run("healthcheck", "run", container, check=False, timeout=60)
            if result.returncode == 0:
                return
            state = self.run(
                "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", container,
                check=False,
            ).stdout.strip()  # fmt: skip
            if time.monotonic() > deadline or state.startswith("exited"):
                logs = self.run("logs", "--tail", "60", container, check=False)
                raise AssertionError(
                    f"{container} is not healthy ({state}; {result.stdout}{result.stderr}):\n"
                    f"{logs.stdout}{logs.stderr}"
                )
            time.sleep(1)

    def exit_code(self, container: str, timeout: float = 300) -> int:
        result = self.run("wait", container, timeout=timeout)
        return int(result.stdout.strip().splitlines()[-1])

    @contextlib.contextmanager
    def logs_on_failure(self, *containers: str) -> Iterator[None]:
        """On a failure inside, the end of each container's log as notes on the exception:
        pytest shows them with the failure (a connection reset through Caddy says nothing of
        which hop dropped it, a refused authorization nothing of why)."""
        try:
            yield
        except BaseException as exc:
            for name in containers:
                logs = self.run("logs", "--tail", "80", name, check=False, timeout=30)
                exc.add_note(f"--- {name} ---\n{logs.stdout}{logs.stderr}")
            raise

    def remove_everything(self, prefix: str) -> None:
        """Every container, pod, network and volume whose name starts with `prefix`."""

        def names(*args: str) -> list[str]:
            result = self.run(*args, check=False)
            return [n for n in result.stdout.split() if n.startswith(prefix)]

        containers = names("ps", "-a", "--format", "{{.Names}}")
        if containers:
            self.run("rm", "-f", "-t", "0", "-v", *containers, check=False)
        pods = names("pod", "ps", "--format", "{{.Name}}")
        if pods:
            self.run("pod", "rm", "-f", *pods, check=False)
        networks = names("network", "ls", "--format", "{{.Name}}")
        if networks:
            self.run("network", "rm", "-f", *networks, check=False)
        volumes = names("volume", "ls", "--format", "{{.Name}}")
        if volumes:
            self.run("volume", "rm", "-f", *volumes, check=False)

    def leftovers(self, prefix: str) -> list[str]:
        found = []
        for args in (
            ("ps", "-a", "--format", "{{.Names}}"),
            ("network", "ls", "--format", "{{.Name}}"),
            ("volume", "ls", "--format", "{{.Name}}"),
        ):
            found += [
                n for n in self.run(*args, check=False).stdout.split() if n.startswith(prefix)
            ]
        return found


def have_podman() -> str:
    """'' when podman and what it needs are installed, else what is missing."""
    needed = ("podman", "runc", "debootstrap", "netavark")
    absent = [
        tool
        for tool in needed
        if not (shutil.which(tool) or Path(f"/usr/lib/podman/{tool}").exists())
    ]
    if not shutil.which("podman-compose", path=str(Path(sys.executable).parent)) and not (
        shutil.which("podman-compose")
    ):
        absent.append("podman-compose (pip install -e '.[dev]')")
    return ", ".join(absent)


def podman_compose() -> str:
    local = Path(sys.executable).parent / "podman-compose"
    return str(local) if local.exists() else "podman-compose"


@contextlib.contextmanager
def session_lock(home: Path) -> Iterator[None]:
    """One container-test session at a time per image store: the compose file publishes fixed
    loopback ports (Jaeger's) and one subnet."""
    home.mkdir(parents=True, exist_ok=True)
    with (home / "session.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def new_session_prefix() -> str:
    return f"{PREFIX}{uuid.uuid4().hex[:8]}"


# -- what a person and an MCP client do through a published port ----------------------------------


async def sdk_client_journey(public: str, browser: Any, email: str) -> dict[str, Any]:
    """The official MCP SDK client against `public`/mcp: discovery, dynamic registration, the
    browser's sign-in and consent, the token, then tools/list and whoami. Returns whoami."""
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    from tests.mcp.sdk_harness import BrowserApprover, MemoryStorage, http_client, oauth_provider

    context = await browser.new_context()
    try:
        approver = BrowserApprover(context, email)
        provider = oauth_provider(f"{public}/mcp", approver, MemoryStorage(), scope=None)
        async with (
            http_client(provider) as http,
            Client(
                streamable_http_client(f"{public}/mcp", http_client=http), mode="auto"
            ) as client,
        ):
            tools = await client.list_tools()
            assert "whoami" in {tool.name for tool in tools.tools}
            result = await client.call_tool("whoami", {})
            assert not result.is_error, result
            assert result.structured_content is not None
            me = dict(result.structured_content)
        assert approver.consents_seen == 1
        assert approver.authorize_urls[0].startswith(f"{public}/authorize?")
        return me
    finally:
        await context.close()
