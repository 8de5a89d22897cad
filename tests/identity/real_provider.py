"""npm `oidc-provider` on Node 22, as a real OpenID provider for the browser journeys.

Node and the package are installed once by npm into the cache (tests/node.py); the provider runs
tests/identity/oidc_provider.mjs on a free 127.0.0.1 port for the whole test session.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import free_port
from tests.node import cache_dir, node_22, npm_install

OIDC_PROVIDER = "oidc-provider@9"  # the major version these tests are written against
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
CLIENT_ID = "gatehouse"
CLIENT_SECRET = "real-provider-secret-1c2d"  # noqa: S105 - a test value
# Logins at the provider (its dev interactions accept any password) and what it says of them.
ACCOUNTS = {
    "alice": {"email": "alice@corp.example", "email_verified": True, "name": "Alice Corp"},
    "bob": {"email": "bob@corp.example", "email_verified": True, "name": "Bob Corp"},
    "carol": {"email": "carol@corp.example", "email_verified": True, "name": "Carol Corp"},
    "dave": {"email": "dave@corp.example", "email_verified": True, "name": "Dave Corp"},
    "eve": {"email": "eve@corp.example", "email_verified": False, "name": "Eve Unverified"},
    "mallory": {"email": "mallory@elsewhere.example", "email_verified": True, "name": "Mallory"},
}


@dataclass(frozen=True)
class RealProvider:
    issuer: str
    process: subprocess.Popen[bytes]
    log: Path


def _module() -> Path:
    prefix = cache_dir() / "oidc-provider"
    module = prefix / "node_modules" / "oidc-provider" / "lib" / "index.js"
    npm_install(prefix, [OIDC_PROVIDER], ready=module.exists, what="npm oidc-provider")
    return module


@contextmanager
def real_provider(redirect_uris: list[str], log_dir: Path) -> Iterator[RealProvider]:
    node = node_22()
    port = free_port()
    config = {
        "port": port,
        "module": str(_module()),
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": redirect_uris,
        "accounts": ACCOUNTS,
    }
    log = log_dir / f"oidc-provider-{port}.log"
    env = {"OIDC_TEST_CONFIG": json.dumps(config), "NODE_ENV": "test", "PATH": "/usr/bin:/bin"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(node), str(SCRIPT)], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"oidc-provider exited:\n{log.read_text()}")
            try:
                metadata = f"{issuer}/.well-known/openid-configuration"
                if httpx.get(metadata, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"oidc-provider did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield RealProvider(issuer, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
