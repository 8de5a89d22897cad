"""`gatehouse providers list` and `gatehouse providers test NAME`, run as `python -m app`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT, TEST_SECRET_KEY, TEST_VAULT_KEYS, free_port
from tests.identity import stub_idp
from tests.identity.stub_idp import StubIdp


def gatehouse(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        cwd=ROOT,
        env={
            **os.environ,
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
            "PUBLIC_URL": "https://gatehouse.example",
            "SECRET_KEY": TEST_SECRET_KEY,
            "VAULT_KEYS": TEST_VAULT_KEYS,
            "VAR_DIR": str(tmp_path),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _providers(stub: StubIdp, down: str) -> dict[str, str]:
    return {
        "OIDC_PROVIDERS": "stub,down",
        "OIDC_STUB_ISSUER": stub.url,
        "OIDC_STUB_CLIENT_ID": stub_idp.CLIENT_ID,
        "OIDC_STUB_CLIENT_SECRET": stub_idp.CLIENT_SECRET,
        "OIDC_DOWN_ISSUER": down,
        "OIDC_DOWN_CLIENT_ID": "c",
        "OIDC_DOWN_CLIENT_SECRET": "s",
    }


def test_providers_list_shows_callback_urls_and_whether_metadata_loads(
    tmp_path: Path, stub: StubIdp
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    run = gatehouse(tmp_path, "providers", "list", **_providers(stub, down))
    assert run.returncode == 0, run.stderr
    stub_line, down_line = run.stdout.strip().splitlines()
    assert stub_line.split("\t")[:4] == [
        "stub",
        "oidc",
        "Stub",
        "https://gatehouse.example/sign-in/stub/callback",
    ]
    assert stub_line.endswith("\tok")
    assert "\tunavailable: ConnectError" in down_line
    assert stub_idp.CLIENT_SECRET not in run.stdout + run.stderr


def test_providers_test_says_what_is_wrong(tmp_path: Path, stub: StubIdp) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    good = gatehouse(tmp_path, "providers", "test", "stub", **_providers(stub, down))
    assert good.returncode == 0, good.stderr
    assert (
        "callback URL to register: https://gatehouse.example/sign-in/stub/callback" in good.stdout
    )
    assert "metadata and keys load: ok" in good.stdout
    bad = gatehouse(tmp_path, "providers", "test", "down", **_providers(stub, down))
    assert bad.returncode == 1
    assert f"problem: ConnectError from {down}/.well-known/openid-configuration" in bad.stderr
    unknown = gatehouse(tmp_path, "providers", "test", "nope", **_providers(stub, down))
    assert unknown.returncode == 2
    assert "no provider named 'nope' (configured: stub, down)" in unknown.stderr


def test_a_bad_provider_setting_stops_the_cli_naming_the_variable(tmp_path: Path) -> None:
    run = gatehouse(tmp_path, "providers", "list", OIDC_PROVIDERS="okta")
    assert run.returncode == 2
    assert "OIDC_OKTA_ISSUER is required" in run.stderr
