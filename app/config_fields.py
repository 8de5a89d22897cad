"""The checks of single variables, each refusing a bad value with its own name (app/config.py
runs them as one field validator; app/config_checks.py holds the checks of whole settings)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import SecretStr

from app import config_checks
from app.kit.redis_url import redis_target

KNOWN_CONNECTORS = ("github",)
KNOWN_TOOLSETS = ("conformance",)

RATE_LIMITS = (
    "signin_limit_account",
    "signin_limit_account_total",
    "verify_limit_account",
    "verify_limit_ip",
    "forgot_limit_email",
    "forgot_limit_ip",
    "email_change_limit_account",
    "signin_limit_ip",
    "signup_limit_ip",
    "credential_limit_user",
    "credential_limit_ip",
    "registration_limit_ip",
)
URLS = ("public_url", "auth_issuer_url", "auth_issuer_internal_url", "github_api_url")
FILES = ("cimd_ca_bundle", "brand_logo_path")


def _known(name: str, known: tuple[str, ...], what: str) -> Callable[[list[str]], list[str]]:
    def check(value: list[str]) -> list[str]:
        names = [v.lower() for v in value]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise ValueError(
                f"{name} names unknown {what} {', '.join(unknown)}; available: {', '.join(known)}"
            )
        return list(dict.fromkeys(names))

    return check


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"CONNECTOR_CACHE_TZ is not a known time zone: {value!r}") from exc
    return value


def _url(name: str, value: str) -> str:
    if not value:
        return value
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not have a query or fragment")
    return value.rstrip("/")


def _database_url(value: str) -> str:
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
        if value.startswith(prefix):
            return "postgresql+asyncpg://" + value[len(prefix) :]
    if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
        return "sqlite+aiosqlite://" + value[len("sqlite://") :]
    if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ValueError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
    return value


def _vault_keys(value: SecretStr | None) -> SecretStr | None:
    if value is not None:
        config_checks.check_vault_keys(value.get_secret_value())
    return value


def _redis_url(value: str | None) -> str | None:
    """Checked here, in full: a URL the Redis clients refuse later stops the start-up with their
    error, and the rate limits' client (`limits`) echoes the whole URL, password and all."""
    if value is None or not value.strip():
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ValueError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
    if parts.scheme == "unix":
        if not parts.path.strip("/"):
            raise ValueError("REDIS_URL: a unix:// URL names the socket's path")
    elif not parts.hostname:
        raise ValueError("REDIS_URL: a redis:// or rediss:// URL names its host")
    try:
        port = parts.port  # ValueError on a port that is not a number from 0 to 65535
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError("REDIS_URL: its port must be from 1 to 65535")
    # Both clients read a path they cannot parse as database 0, in silence (and disagree on
    # some, such as /%31); a `db` in the query that is not a number stops them at start-up.
    database = parts.path.removeprefix("/") if parts.scheme != "unix" else ""
    if database and not _database_number(database):
        raise ValueError("REDIS_URL: its path is a database number, such as /0")
    for name, number in parse_qsl(parts.query, keep_blank_values=True):
        if name == "db" and not _database_number(number):
            raise ValueError("REDIS_URL: db in its query must be a database number, such as 0")
    redis_target(value)  # a timeout in its query must be a number of seconds
    return value


def _database_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _url_named(value: str, name: str) -> str:
    return _url(name, value)


def _named(check: Callable[[Any, str], Any], field: str) -> Callable[[Any], Any]:
    """`check(value, NAME)` for one field: the message names the variable in upper case."""
    return lambda value: check(value, field.upper())


_CHECKS: dict[str, Callable[[Any], Any]] = {
    "allowed_origins": lambda v: config_checks.check_origins(v, "ALLOWED_ORIGINS"),
    "allowed_hosts": lambda v: config_checks.check_hosts(v, "ALLOWED_HOSTS"),
    "redis_url": _redis_url,
    "forwarded_allow_ips": config_checks.check_forwarded_allow_ips,
    "var_dir": lambda v: config_checks.check_var_dir(Path(v)),
    "vault_keys": _vault_keys,
    "connectors": _known("CONNECTORS", KNOWN_CONNECTORS, "connectors"),
    "mcp_toolsets": _known("MCP_TOOLSETS", KNOWN_TOOLSETS, "toolsets"),
    "connector_cache_tz": _zone,
    "database_url": _database_url,
    **{n: _named(config_checks.check_rate_limit, n) for n in RATE_LIMITS},
    **{n: _named(_url_named, n) for n in URLS},
    **{n: _named(config_checks.check_existing_file, n) for n in FILES},
}
CHECKED_FIELDS = tuple(_CHECKS)


def check_field(field: str, value: object) -> object:
    """The value as the setting keeps it, or ValueError naming the variable and the fix."""
    return _CHECKS[field](value)
