"""`gatehouse serve` in production: each unsafe setting stops the start-up naming the variable
and the fix; a correct configuration starts against PostgreSQL and reports what it serves
without a password or a key."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.config import Settings
from tests.conftest import ROOT, TEST_SECRET_KEY, TEST_VAULT_KEYS, Backend, start_server

GOOD = {
    "GATEHOUSE_ENV": "production",
    "PUBLIC_URL": "https://gatehouse.example",
    "DATABASE_URL": "postgresql://gatehouse:s3cret-pw@db.internal:5432/gatehouse",
    "SECRET_KEY": TEST_SECRET_KEY,
    "VAULT_KEYS": TEST_VAULT_KEYS,
    "SMTP_URL": "smtp://mailer:s3cret-pw@mail.internal:587",
}


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m app serve` with only the given settings (nothing from the outer environment)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in Settings.model_fields and not k.startswith("OTEL_")
    }
    clean.update({"VAR_DIR": str(tmp_path), "PORT": "1"}, **env)
    return subprocess.run(
        [sys.executable, "-m", "app", "serve"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


UNSAFE = {
    "missing SECRET_KEY": ({"SECRET_KEY": ""}, "SECRET_KEY is required in production"),
    "short SECRET_KEY": ({"SECRET_KEY": "short"}, "SECRET_KEY is too short"),
    "missing VAULT_KEYS": ({"VAULT_KEYS": ""}, "VAULT_KEYS is required in production"),
    "malformed VAULT_KEYS": ({"VAULT_KEYS": "k1:not-base64!"}, "VAULT_KEYS entry 1"),
    "http PUBLIC_URL": ({"PUBLIC_URL": "http://gatehouse.example"}, "PUBLIC_URL must be https"),
    "default DATABASE_URL": ({"DATABASE_URL": None}, "DATABASE_URL is required in production"),
    "placeholder password": (
        {"DATABASE_URL": "postgresql://gatehouse:changethis@postgres/gatehouse"},
        "set POSTGRES_PASSWORD",
    ),
    "SQLite in a split role": (
        {"GATEHOUSE_ROLE": "auth", "DATABASE_URL": "sqlite:///./var/x.db"},
        "DATABASE_URL is SQLite, but GATEHOUSE_ROLE=auth",
    ),
    "mcp role without AUTH_ISSUER_URL": (
        {"GATEHOUSE_ROLE": "mcp"},
        "AUTH_ISSUER_URL is required with GATEHOUSE_ROLE=mcp",
    ),
    "mcp role with an http issuer": (
        {"GATEHOUSE_ROLE": "mcp", "AUTH_ISSUER_URL": "http://auth.example"},
        "AUTH_ISSUER_URL must be https",
    ),
    "AUTH_ISSUER_URL in role all": (
        {"AUTH_ISSUER_URL": "https://elsewhere.example"},
        "AUTH_ISSUER_URL only applies to GATEHOUSE_ROLE=mcp",
    ),
    "test-only CIMD settings": ({"CIMD_ALLOW_LOOPBACK": "true"}, "CIMD_ALLOW_LOOPBACK"),
    "missing SMTP_URL": ({"SMTP_URL": None}, "SMTP_URL is required in production"),
    "SMTP_URL of another scheme": ({"SMTP_URL": "http://mailer:s3cret-pw@mail"}, "SMTP_URL must"),
}


@pytest.mark.parametrize("case", list(UNSAFE), ids=list(UNSAFE))
def test_an_unsafe_production_setting_stops_the_start_up_naming_it(
    case: str, tmp_path: Path
) -> None:
    change, expected = UNSAFE[case]
    env = {**GOOD, **{k: v for k, v in change.items() if v is not None}}
    for name in (k for k, v in change.items() if v is None):
        env.pop(name)
    result = serve(tmp_path, **env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "configuration error: " in result.stderr
    assert expected in result.stderr
    assert "Gatehouse is serving" not in result.stdout
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert TEST_SECRET_KEY not in result.stdout + result.stderr
    assert not list(tmp_path.iterdir()), "nothing generated in production"


def test_forwarded_allow_ips_star_is_accepted_with_a_warning() -> None:
    settings = Settings(forwarded_allow_ips="*")
    assert any(w.startswith("FORWARDED_ALLOW_IPS='*'") for w in settings.warnings())
    assert not any("FORWARDED" in w for w in Settings().warnings())


class _Collector(BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP exports and drops them: a reachable collector, so shutdown is quick."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_correct_production_configuration_starts_on_postgresql_and_reports_it(
    backend: Backend, tmp_path: Path, collector: str
) -> None:
    if not backend.is_postgres:
        pytest.skip("production runs on PostgreSQL (SQLite is only warned about)")
    # The test server trusts every local connection, so a password is accepted and ignored:
    # the report must not show it.
    url = make_url(backend.url)
    server = start_server(
        backend,
        tmp_path,
        GATEHOUSE_ENV="production",
        # TLS ends at a proxy in front; Gatehouse itself listens on loopback.
        PUBLIC_URL="https://gatehouse.example",
        DATABASE_URL=url.set(password="s3cret-pw").render_as_string(hide_password=False),
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://collector:pw@{collector}",
        FORWARDED_ALLOW_IPS="127.0.0.1",
        SMTP_URL="smtp://mailer:s3cret-pw@127.0.0.1:1",
    )
    try:
        port = server.env["PORT"]
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
        assert httpx.get(f"http://127.0.0.1:{port}/ready").status_code == 200
        metadata = httpx.get(f"http://127.0.0.1:{port}/.well-known/oauth-authorization-server")
        assert metadata.json()["issuer"] == "https://gatehouse.example"
    finally:
        server.stop()
    report = server.log.read_text()
    assert "Gatehouse is serving at https://gatehouse.example" in report
    assert "environment: production" in report
    assert "role:        all" in report
    assert "issuer:      https://gatehouse.example" in report
    assert (
        f"database:    postgresql postgres@{url.host}:{url.port or 5432}/{url.database}" in report
    )
    assert "vault keys:  1 loaded, active test1" in report
    assert f"telemetry:   on, OTLP to http://{collector}" in report
    assert f"listening:   127.0.0.1:{port}" in report
    assert "s3cret-pw" not in report
    assert "collector:pw" not in report
    assert TEST_SECRET_KEY not in report
    assert TEST_VAULT_KEYS.split(":", 1)[1] not in report
    assert "warning: REDIS_URL is not set" in report
    assert "create an account" not in report, "development hints stay out of production"
