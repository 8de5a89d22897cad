"""The real image, built from the real Dockerfile on podman (from a base image bootstrapped from
Debian's packages), run as an admin runs it: `gatehouse db upgrade`, then `gatehouse serve`
against PostgreSQL on a bridge network of its own, published on loopback only."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_SECRET_KEY, TEST_VAULT_KEYS
from tests.deploy.podman_support import Podman, compose_images, free_port, sdk_client_journey
from tests.helpers import PASSWORD, sign_in, sign_up

pytestmark = pytest.mark.containers

DB_PASSWORD = "image-test-pw-4c1e"


@dataclass
class Running:
    image: str
    container: str
    public: str


@pytest.fixture(scope="module")
def running(podman: Podman, gatehouse_image: str, standins: None) -> Iterator[Running]:
    name = f"{podman.session}-image"
    network = f"{name}-net"
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    database = f"postgresql://gatehouse:{DB_PASSWORD}@postgres:5432/gatehouse"
    try:
        podman.run("network", "create", network)
        podman.run(
            "run", "-d", "--name", f"{name}-postgres", "--network", network,
            "--network-alias", "postgres",
            "-e", "POSTGRES_USER=gatehouse", "-e", f"POSTGRES_PASSWORD={DB_PASSWORD}",
            "-e", "POSTGRES_DB=gatehouse",
            "--health-cmd", "pg_isready -U gatehouse -d gatehouse",
            compose_images()["postgres"],
        )  # fmt: skip
        podman.healthy(f"{name}-postgres")
        common = ["--network", network, "-e", f"DATABASE_URL={database}"]
        secrets = ["-e", f"SECRET_KEY={TEST_SECRET_KEY}", "-e", f"VAULT_KEYS={TEST_VAULT_KEYS}"]
        migrated = podman.run("run", "--rm", *common, *secrets, gatehouse_image,
                              "gatehouse", "db", "upgrade")  # fmt: skip
        assert "database at head" in migrated.stdout + migrated.stderr
        podman.run(
            "run", "-d", "--name", f"{name}-serve", *common, *secrets,
            "-e", f"PUBLIC_URL={public}", "-p", f"127.0.0.1:{port}:8000", gatehouse_image,
        )  # fmt: skip
        podman.healthy(f"{name}-serve", timeout=180)  # the image's own HEALTHCHECK
        yield Running(gatehouse_image, f"{name}-serve", public)
    finally:
        podman.remove_everything(name)


def test_the_image_keeps_its_health_check_and_runs_as_uid_10001(
    podman: Podman, running: Running
) -> None:
    health = podman.run("image", "inspect", "--format", "{{json .HealthCheck}}", running.image)
    assert "/health" in health.stdout, "built in docker format, the HEALTHCHECK is kept"
    status = podman.run("exec", running.container, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+10001\s+10001\s+10001\s+10001$", status, re.MULTILINE), status
    assert re.search(r"^Gid:\s+10001\s+10001\s+10001\s+10001$", status, re.MULTILINE), status
    command = podman.run("exec", running.container, "cat", "/proc/1/cmdline").stdout
    assert command.split("\0")[:3] == ["/opt/venv/bin/python", "/opt/venv/bin/gatehouse", "serve"]
    assert httpx.get(f"{running.public}/health", timeout=10).json() == {"status": "ok"}


def test_the_image_holds_no_compiler_and_no_test_tooling(podman: Podman, running: Running) -> None:
    shell = "for t in python gcc cc c++ g++ make ld as cpp; do command -v $t || true; done"
    found = podman.run("run", "--rm", "--entrypoint", "/bin/sh", running.image, "-c", shell)
    assert found.stdout.split() == ["/opt/venv/bin/python"], found.stdout
    probe = (
        "import importlib.util as u; "
        "print([m for m in ('pytest', '_pytest', 'pytest_asyncio', 'playwright', 'mypy', "
        "'ruff', 'podman_compose', 'fastapi') if u.find_spec(m)])"
    )
    modules = podman.run("run", "--rm", running.image, "python", "-c", probe).stdout.strip()
    assert modules == "['fastapi']", "the runtime dependencies only, no dev extras"
    tests = podman.run("run", "--rm", "--entrypoint", "/bin/sh", running.image, "-c", "ls /app")
    assert sorted(tests.stdout.split()) == ["README.md", "alembic", "alembic.ini", "app",
                                            "pyproject.toml"]  # fmt: skip


async def test_a_person_signs_up_and_in_through_the_container(running: Running) -> None:
    async with httpx.AsyncClient(base_url=running.public, timeout=30) as web:
        email = await sign_up(web)
    async with httpx.AsyncClient(base_url=running.public, timeout=30) as web:
        refused = await sign_in(web, email, password=PASSWORD + "x")
        assert refused.status_code != 303, refused.text
        assert not web.cookies.get("gh_session")
        signed_in = await sign_in(web, email)
        assert signed_in.status_code == 303, signed_in.text
        assert web.cookies.get("gh_session")
        account = await web.get("/account")
        assert account.status_code == 200
        assert email in account.text


async def test_the_mcp_sdk_client_completes_oauth_through_the_container(
    podman: Podman, running: Running, browser: Any
) -> None:
    async with httpx.AsyncClient(base_url=running.public, timeout=30) as web:
        email = await sign_up(web)
    with podman.logs_on_failure(running.container):
        me = await sdk_client_journey(running.public, browser, email)
    assert me["email"] == email
    assert me["scopes"] == ["mcp", "mcp:write"]
