"""docker-compose.yml: valid against the Compose specification (schema vendored from
compose-spec/compose-spec, schema/compose-spec.json), and the stack issue 7 asks for: PostgreSQL
with a healthcheck and a named volume, a one-shot migration the app waits for, Jaeger, the split
profile behind one proxy, and no secret written into the file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from app.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SCHEMA = Path(__file__).with_name("compose-spec.json")
ENV_EXAMPLE = ROOT / ".env.example"
GATEHOUSE_SERVICES = ("migrate", "gatehouse", "auth", "mcp")
SECRET_NAMES = ("SECRET_KEY", "VAULT_KEYS", "POSTGRES_PASSWORD", "OTEL_EXPORTER_OTLP_HEADERS")
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)(?:(:?[-?+])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return {str(k): str(v) for k, v in env.items()}


def test_the_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any],
) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(compose), key=lambda e: e.json_path
    )
    assert not errors, "\n".join(f"{e.json_path}: {e.message}" for e in errors)


def test_the_default_stack_has_postgres_migrate_gatehouse_and_jaeger(
    compose: dict[str, Any],
) -> None:
    default = {name for name, svc in services(compose).items() if not svc.get("profiles")}
    assert default == {"postgres", "migrate", "gatehouse", "jaeger"}


def test_postgres_is_the_official_image_with_a_named_volume_and_pg_isready(
    compose: dict[str, Any],
) -> None:
    postgres = services(compose)["postgres"]
    assert re.fullmatch(r"postgres:\d+(\.\d+)?", postgres["image"])
    volume, _, target = postgres["volumes"][0].partition(":")
    assert volume in compose["volumes"], "a named volume, not a bind mount"
    assert target == "/var/lib/postgresql/data"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_migrate_runs_once_and_the_app_roles_wait_for_it(compose: dict[str, Any]) -> None:
    svc = services(compose)
    migrate = svc["migrate"]
    assert migrate["command"] == ["gatehouse", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("gatehouse", "auth", "mcp"):
        assert svc[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        ), name


def test_gatehouse_runs_role_all_on_port_8000_with_traces_to_jaeger(
    compose: dict[str, Any],
) -> None:
    gatehouse = services(compose)["gatehouse"]
    env = environment(gatehouse)
    assert env["GATEHOUSE_ROLE"] == "all"
    assert any(str(p).endswith(":8000") for p in gatehouse["ports"])
    assert (
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}"
    )
    assert gatehouse["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_jaeger_is_all_in_one_with_otlp_http_and_the_ui(compose: dict[str, Any]) -> None:
    jaeger = services(compose)["jaeger"]
    assert jaeger["image"].startswith("jaegertracing/all-in-one:")
    published = " ".join(str(p) for p in jaeger["ports"])
    assert ":16686:16686" in published
    assert ":4318:4318" in published


def test_the_split_profile_runs_auth_and_two_mcp_replicas_behind_one_proxy(
    compose: dict[str, Any],
) -> None:
    svc = services(compose)
    split = {name for name, s in svc.items() if "split" in s.get("profiles", [])}
    assert split == {"auth", "mcp", "proxy"}
    assert environment(svc["auth"])["GATEHOUSE_ROLE"] == "auth"
    assert environment(svc["mcp"])["GATEHOUSE_ROLE"] == "mcp"
    assert svc["mcp"]["deploy"]["replicas"] == 2
    assert "ports" not in svc["auth"], "only the proxy is published"
    assert "ports" not in svc["mcp"], "only the proxy is published"
    proxy = svc["proxy"]
    assert proxy["image"].startswith("caddy:")
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert {d: c["condition"] for d, c in proxy["depends_on"].items()} == {
        "auth": "service_healthy",
        "mcp": "service_healthy",
    }


def test_both_split_roles_share_the_proxy_url_as_public_url_and_issuer(
    compose: dict[str, Any],
) -> None:
    auth = environment(services(compose)["auth"])
    mcp = environment(services(compose)["mcp"])
    assert auth["PUBLIC_URL"] == mcp["PUBLIC_URL"] == mcp["AUTH_ISSUER_URL"]
    assert "AUTH_ISSUER_URL" not in auth
    assert mcp["AUTH_ISSUER_INTERNAL_URL"] == "http://auth:8000"


def test_the_caddyfile_sends_mcp_and_its_metadata_to_mcp_and_the_rest_to_auth() -> None:
    caddyfile = (ROOT / "deploy" / "Caddyfile").read_text()
    matcher = re.search(r"@mcp path (.+)", caddyfile)
    assert matcher is not None
    assert set(matcher.group(1).split()) == {
        "/mcp",
        "/mcp/",
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/*",
    }
    assert "name mcp" in caddyfile
    assert "lb_policy round_robin" in caddyfile
    assert "reverse_proxy auth:8000" in caddyfile


def test_every_gatehouse_service_mounts_the_shared_var_volume(compose: dict[str, Any]) -> None:
    # Development secrets are generated once and must be the same in every process.
    for name in GATEHOUSE_SERVICES:
        assert "gatehouse-var:/var/lib/gatehouse" in services(compose)[name]["volumes"], name
    assert set(compose["volumes"]) >= {"postgres-data", "gatehouse-var"}


def test_no_secret_is_written_into_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for key, value in environment(service).items():
            if any(secret in key for secret in SECRET_NAMES) or key == "DATABASE_URL":
                for variable, operator, default in VARIABLE.findall(value):
                    if variable in SECRET_NAMES:
                        assert operator in ("", ":?", ":-"), (name, key)
                        assert operator != ":-" or default == "", f"{name}.{key} has a default"
                literal = VARIABLE.sub("", value)
                assert not re.search(r":[^/@]+@", literal), f"{name}.{key} holds a password"
                if key != "DATABASE_URL":
                    assert VARIABLE.fullmatch(value), f"{name}.{key} must come from ${{VAR}}"
    text = COMPOSE.read_text()
    assert "changethis" not in text


def test_gatehouse_services_read_the_env_file(compose: dict[str, Any]) -> None:
    for name in GATEHOUSE_SERVICES:
        assert services(compose)[name]["env_file"] == [{"path": ".env", "required": False}]


def _documented(name: str) -> bool:
    return bool(re.search(rf"^#? ?{name}=", ENV_EXAMPLE.read_text(), re.MULTILINE))


def test_env_example_documents_every_setting() -> None:
    missing = [n.upper() for n in Settings.model_fields if not _documented(n.upper())]
    assert not missing, f".env.example does not mention {missing}"
    assert _documented("FORWARDED_ALLOW_IPS")
    assert _documented("OTEL_EXPORTER_OTLP_ENDPOINT")


def test_env_example_documents_every_variable_the_compose_file_reads() -> None:
    used = {variable for variable, _, _ in VARIABLE.findall(COMPOSE.read_text())}
    missing = sorted(v for v in used if not _documented(v))
    assert not missing, f".env.example does not mention {missing}"


def test_env_example_holds_no_secret_value() -> None:
    values = dict(
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values["SECRET_KEY"] == ""
    assert values["VAULT_KEYS"] == ""
    # The only non-empty credential is the placeholder production refuses.
    assert values["POSTGRES_PASSWORD"] == "changethis"


def test_env_and_generated_secrets_are_ignored_by_git_and_docker() -> None:
    gitignore = (ROOT / ".gitignore").read_text().splitlines()
    assert ".env" in gitignore
    assert "var/" in gitignore
    dockerignore = [
        line for line in (ROOT / ".dockerignore").read_text().splitlines() if line[:1] != "#"
    ]
    assert dockerignore[0] == "*", "an allow-list: nothing enters the build context by default"
    assert not any(line.startswith(("!.env", "!var")) for line in dockerignore)
