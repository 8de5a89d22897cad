"""Settings: production refuses unsafe values naming the variable; development generates secrets
once, privately; database URLs are mapped to the async drivers."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from app.config import ConfigError, Settings, load_settings

GOOD_SECRET = "s" * 48
GOOD_VAULT_KEYS = "k1:" + "B" * 43 + "="


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Only what a test sets: no variable from the outer environment leaks in."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A complete, acceptable production environment; tests take one thing away."""
    monkeypatch.setenv("GATEHOUSE_ENV", "production")
    monkeypatch.setenv("PUBLIC_URL", "https://gatehouse.example")
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("VAULT_KEYS", GOOD_VAULT_KEYS)
    monkeypatch.setenv("DATABASE_URL", "postgresql://gatehouse@db.example:5432/gatehouse")
    monkeypatch.setenv("SMTP_URL", "smtp://mail.example:587")
    return monkeypatch


def refusal() -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return str(caught.value)


# -- production ------------------------------------------------------------------------------------


def test_production_accepts_a_complete_https_configuration(
    production: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    settings = load_settings()
    assert settings.is_production
    assert settings.secret_key_bytes == GOOD_SECRET.encode()
    assert not clean_environment.exists()  # nothing generated


def test_production_refuses_a_missing_secret_key(production: pytest.MonkeyPatch) -> None:
    production.delenv("SECRET_KEY")
    assert refusal().startswith("SECRET_KEY is required in production")


def test_production_refuses_a_short_secret_key(production: pytest.MonkeyPatch) -> None:
    production.setenv("SECRET_KEY", "x" * 31)
    message = refusal()
    assert message.startswith("SECRET_KEY is too short")
    assert "x" * 31 not in message


def test_production_accepts_a_secret_key_of_32_characters(
    production: pytest.MonkeyPatch,
) -> None:
    production.setenv("SECRET_KEY", "x" * 32)
    assert load_settings().secret_key_bytes == b"x" * 32


def test_production_refuses_an_empty_secret_key(production: pytest.MonkeyPatch) -> None:
    production.setenv("SECRET_KEY", "")
    assert refusal().startswith("SECRET_KEY is required in production")


def test_production_refuses_the_secret_key_generated_in_development(
    production: pytest.MonkeyPatch,
) -> None:
    production.delenv("GATEHOUSE_ENV")
    production.delenv("SECRET_KEY")
    generated = load_settings().secret_key_bytes.decode()
    production.setenv("GATEHOUSE_ENV", "production")
    production.setenv("SECRET_KEY", generated)
    assert refusal().startswith("SECRET_KEY is the development key generated into the var")


def test_production_refuses_a_missing_vault_keys(production: pytest.MonkeyPatch) -> None:
    production.delenv("VAULT_KEYS")
    assert refusal().startswith("VAULT_KEYS is required in production")


def test_production_refuses_the_vault_keys_generated_in_development(
    production: pytest.MonkeyPatch,
) -> None:
    production.delenv("GATEHOUSE_ENV")
    production.delenv("VAULT_KEYS")
    generated = load_settings().vault_keys_value
    production.setenv("GATEHOUSE_ENV", "production")
    production.setenv("VAULT_KEYS", generated)
    assert refusal().startswith("VAULT_KEYS is the development key generated into the var")


@pytest.mark.parametrize(
    "public_url", ["http://gatehouse.example", "http://10.0.0.5:8000", "http://0.0.0.0:8000"]
)
def test_production_refuses_an_http_public_url_that_is_not_loopback(
    production: pytest.MonkeyPatch, public_url: str
) -> None:
    production.setenv("PUBLIC_URL", public_url)
    assert refusal().startswith(f"PUBLIC_URL must be https in production (got {public_url})")


@pytest.mark.parametrize(
    "public_url", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"]
)
def test_production_accepts_an_http_loopback_public_url(
    production: pytest.MonkeyPatch, public_url: str
) -> None:
    production.setenv("PUBLIC_URL", public_url)
    assert load_settings().public_url == public_url


def test_production_names_every_problem_at_once(production: pytest.MonkeyPatch) -> None:
    production.delenv("SECRET_KEY")
    production.delenv("VAULT_KEYS")
    production.setenv("PUBLIC_URL", "http://gatehouse.example")
    message = refusal()
    for variable in ("SECRET_KEY", "VAULT_KEYS", "PUBLIC_URL"):
        assert f"{variable} " in message


# -- development -----------------------------------------------------------------------------------


def test_development_generates_both_secrets_into_private_files(
    clean_environment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gatehouse.config"):
        settings = load_settings()
    secret_file = clean_environment / "secret_key"
    vault_file = clean_environment / "vault_keys"
    assert secret_file.read_text() == settings.secret_key_bytes.decode() + "\n"
    assert vault_file.read_text() == settings.vault_keys_value + "\n"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600
    assert len(settings.secret_key_bytes) >= 32
    assert settings.vault_keys_value.startswith("dev1:")
    assert sorted(p.name for p in clean_environment.iterdir()) == ["secret_key", "vault_keys"]
    warned = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("SECRET_KEY was not set") for m in warned)
    assert any(m.startswith("VAULT_KEYS was not set") for m in warned)


def test_development_reuses_the_secrets_it_generated(
    clean_environment: Path, caplog: pytest.LogCaptureFixture
) -> None:
    first = load_settings()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gatehouse.config"):
        second = load_settings()
    assert second.secret_key_bytes == first.secret_key_bytes
    assert second.vault_keys_value == first.vault_keys_value
    assert caplog.records == []


def test_development_uses_given_secrets_and_generates_nothing(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", GOOD_SECRET)
    monkeypatch.setenv("VAULT_KEYS", GOOD_VAULT_KEYS)
    settings = load_settings()
    assert settings.secret_key_bytes == GOOD_SECRET.encode()
    assert settings.vault_keys_value == GOOD_VAULT_KEYS
    assert not clean_environment.exists()


def test_development_treats_an_empty_secret_key_as_unset(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", "")
    settings = load_settings()
    assert settings.secret_key_bytes == (clean_environment / "secret_key").read_bytes().strip()
    assert len(settings.secret_key_bytes) >= 32


# -- URLs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgresql://u:p@db.example:5432/gh", "postgresql+asyncpg://u:p@db.example:5432/gh"),
        ("postgres://u@db.example/gh", "postgresql+asyncpg://u@db.example/gh"),
        ("postgresql+asyncpg://u@db.example/gh", "postgresql+asyncpg://u@db.example/gh"),
        ("sqlite:///./var/x.db", "sqlite+aiosqlite:///./var/x.db"),
        ("sqlite+aiosqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db"),
    ],
)
def test_database_url_is_mapped_to_an_async_driver(
    monkeypatch: pytest.MonkeyPatch, given: str, used: str
) -> None:
    monkeypatch.setenv("DATABASE_URL", given)
    assert load_settings().database_url == used


def test_an_unsupported_database_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://u@db.example/gh")
    with pytest.raises(ConfigError, match="DATABASE_URL must be a postgresql:// or sqlite://"):
        load_settings()


def test_password_hashes_default_to_sched_idle_with_a_rescue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PASSWORD_HASH_PRIORITY=auto (app/auth/passwords.py): the loop before a hash, and a starved
    hash rescued by a niced thread; `low` and `idle` stay on offer."""
    assert load_settings().password_hash_priority == "auto"
    for priority in ("low", "idle", "auto"):
        monkeypatch.setenv("PASSWORD_HASH_PRIORITY", priority)
        assert load_settings().password_hash_priority == priority


def test_public_url_defaults_to_host_and_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "127.0.0.2")
    monkeypatch.setenv("PORT", "9001")
    settings = load_settings()
    assert settings.public_url == "http://127.0.0.2:9001"
    assert settings.auth_issuer_url == "http://127.0.0.2:9001"


def test_a_bind_all_host_gives_a_loopback_public_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOST", "0.0.0.0")  # noqa: S104 - the value under test
    assert load_settings().public_url == "http://127.0.0.1:8000"


def test_public_url_loses_its_trailing_slash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_URL", "https://gatehouse.example/")
    assert load_settings().public_url == "https://gatehouse.example"


@pytest.mark.parametrize(
    "public_url", ["gatehouse.example", "ftp://gatehouse.example", "https://g.example/?a=1"]
)
def test_a_malformed_public_url_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, public_url: str
) -> None:
    monkeypatch.setenv("PUBLIC_URL", public_url)
    with pytest.raises(ConfigError, match="PUBLIC_URL must"):
        load_settings()


def test_list_settings_are_read_as_comma_separated_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", "a.example, b.example,,")
    monkeypatch.setenv("CONNECTORS", "github")
    settings = load_settings()
    assert settings.allowed_hosts == ["a.example", "b.example"]
    assert settings.connectors == ["github"]


def test_introspection_credentials_come_in_pairs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_ROLE", "mcp")
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_ID", "gh_rs_abc")
    message = refusal()
    assert (
        "AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_CLIENT_SECRET go together" in message
    )
    assert "gatehouse clients add-resource-server" in message
    monkeypatch.delenv("AUTH_INTROSPECTION_CLIENT_ID")
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_SECRET", "gh_cs_secret")
    assert "go together" in refusal()


def test_introspection_credentials_are_ignored_outside_the_mcp_role(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One .env serves every compose service, so auth and all start, with a warning.
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_ID", "gh_rs_abc")
    for role in ("all", "auth"):
        monkeypatch.setenv("GATEHOUSE_ROLE", role)
        settings = load_settings()
        assert not settings.uses_introspection
        assert any(
            f"ignored with GATEHOUSE_ROLE={role}" in warning for warning in settings.warnings()
        )
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_SECRET", "gh_cs_secret")
    monkeypatch.setenv("GATEHOUSE_ROLE", "mcp")
    settings = load_settings()
    assert settings.uses_introspection
    assert settings.warnings() == []
    assert "gh_cs_secret" not in repr(settings)


def test_empty_introspection_variables_mean_the_shared_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A compose file passes `${AUTH_INTROSPECTION_CLIENT_ID:-}` through as an empty string.
    monkeypatch.setenv("GATEHOUSE_ROLE", "mcp")
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_ID", "")
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_SECRET", "")
    assert not load_settings().uses_introspection


def test_introspection_needs_a_resource_servers_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEHOUSE_ROLE", "mcp")
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_ID", "gh_c_an_ordinary_client")
    monkeypatch.setenv("AUTH_INTROSPECTION_CLIENT_SECRET", "gh_cs_secret")
    message = refusal()
    assert (
        "AUTH_INTROSPECTION_CLIENT_ID=gh_c_an_ordinary_client is not a resource server" in message
    )
    assert "gh_cs_secret" not in message


@pytest.mark.parametrize("value", ["0", "soon", "inf"])
def test_a_redis_url_timeout_that_is_not_seconds_is_refused(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("REDIS_URL", f"redis://:hunter2@127.0.0.1:6379/0?socket_timeout={value}")
    message = refusal()
    assert message == "REDIS_URL: socket_timeout in its query must be a positive number of seconds"
    assert "hunter2" not in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("redis://:hunter2@127.0.0.1:notaport/0", "REDIS_URL: its port must be from 1 to 65535"),
        ("redis://:hunter2@127.0.0.1:99999/0", "REDIS_URL: its port must be from 1 to 65535"),
        ("rediss://:hunter2@:6379/0", "REDIS_URL: a redis:// or rediss:// URL names its host"),
        ("unix://:hunter2@", "REDIS_URL: a unix:// URL names the socket's path"),
        (
            "redis://:hunter2@127.0.0.1:6379/abc",
            "REDIS_URL: its path is a database number, such as /0",
        ),
        ("redis://:hunter2@127.0.0.1/0/1", "REDIS_URL: its path is a database number, such as /0"),
        (
            "redis://:hunter2@127.0.0.1/0?db=abc",
            "REDIS_URL: db in its query must be a database number, such as 0",
        ),
        (
            "unix://:hunter2@/run/redis.sock?db=-1",
            "REDIS_URL: db in its query must be a database number, such as 0",
        ),
    ],
)
def test_a_redis_url_the_clients_cannot_read_is_one_line_without_its_password(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    # Refused here, not at start-up by the rate limits' client, whose error echoes the URL.
    monkeypatch.setenv("REDIS_URL", value)
    message = refusal()
    assert message == expected
    assert "hunter2" not in message
