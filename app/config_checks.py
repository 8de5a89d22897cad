"""The checks behind app/config.py's validators, and how a refused setting is worded.

Every message names the variable as the README does (upper case) and says what it accepts, on
one line per bad variable: `load_settings` turns pydantic's report into these lines.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from email.utils import parseaddr
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import limits
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from app.kit.envelope import LocalKeyProvider, VaultKeyError
from app.kit.hosts import is_loopback_host

if TYPE_CHECKING:
    from app.config import Settings

MIN_SECRET_KEY_LENGTH = 32
# The placeholder .env.example ships for POSTGRES_PASSWORD; production refuses it.
PLACEHOLDER_PASSWORDS = frozenset({"changethis"})

# What each variable accepts, for the variables whose refusal pydantic words (types, ranges).
ACCEPTED = {
    "port": "an integer from 1 to 65535",
    "gatehouse_env": "development or production",
    "gatehouse_role": "all, auth or mcp",
    "allow_signup": "true or false",
    "cimd_allow_loopback": "true or false",
    "access_token_ttl": "seconds, from 60 to 86400",
    "refresh_reuse_grace": "seconds, from 0 to 600",
    "session_idle_ttl": "seconds, at least 60",
    "session_max_ttl": "seconds, at least 60",
    "connector_cache_ttl": "seconds, at least 1 (or unset)",
    "auth_code_ttl": "seconds, from 10 to 600",
    "refresh_token_ttl": "seconds, at least 300",
    "registration_unused_ttl": "seconds, at least 60",
    "purge_interval": "seconds, 0 or more (0 turns the purge off)",
    "log_format": "json or text",
    "log_level": "debug, info, warning or error",
    "brand_name": "a name of 1 to 60 characters",
}
# Never echoed back: they are, or can carry, secrets.
SECRET_FIELDS = frozenset(
    {"secret_key", "vault_keys", "auth_introspection_client_secret", "database_url", "redis_url"}
)

# The client_id prefix of a resource server's introspection credentials (`gatehouse clients
# add-resource-server`); AUTH_INTROSPECTION_CLIENT_ID must carry it.
RESOURCE_SERVER_ID_PREFIX = "gh_rs_"


def explain_validation_error(exc: ValidationError) -> str:
    """One line per bad variable: `PORT='abc' is not accepted: an integer from 1 to 65535`."""
    lines: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else ""
        name = field.upper()
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "value_error":
            lines.setdefault(name, message if name in message else f"{name}: {message}")
            continue
        shown = "" if field in SECRET_FIELDS else f"={error.get('input')!r}"
        accepted = ACCEPTED.get(field, message[:1].lower() + message[1:])
        lines.setdefault(name, f"{name}{shown} is not accepted: use {accepted}")
    return "\n".join(lines.values())


def check_before(field: str, value: object) -> object:
    """The checks that run on the raw value (app/config.py `_checked`)."""
    if not isinstance(value, str):
        return value
    if field == "host":
        return _bind_address(value)
    if field == "log_level":
        return value.strip().lower()
    if field == "secret_key" and value.strip() and len(value.strip()) < MIN_SECRET_KEY_LENGTH:
        raise ValueError(
            f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    return value


def _bind_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        pass
    if not value or any(c in value for c in "/:@ ") or value.startswith("."):
        raise ValueError(
            f"HOST={value!r} is not an address to listen on: use 127.0.0.1, 0.0.0.0, :: "
            "or a host name of this machine"
        )
    return value


def check_rate_limit(value: str, name: str) -> str:
    try:
        limits.parse(value)
    except ValueError:
        raise ValueError(
            f"{name}={value!r} is not a rate limit: use e.g. '10 per 15 minutes' or '20/hour'"
        ) from None
    return value


def check_origins(values: Iterable[str], name: str) -> list[str]:
    """Browser origins: scheme://host[:port], nothing after it (RFC 6454 §6.1)."""
    checked = []
    for value in values:
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username
        ):
            raise ValueError(
                f"{name} holds {value!r}, not an origin: use a comma list like "
                "https://app.example.com,http://localhost:6274"
            )
        checked.append(value.rstrip("/"))
    return checked


def check_hosts(values: Iterable[str], name: str) -> list[str]:
    """Host header values: a host name or address, with an optional port."""
    checked = []
    for value in values:
        parts = urlsplit(f"//{value}")
        try:
            port_ok = parts.port is None or 0 < parts.port < 65536
        except ValueError:
            port_ok = False
        if "/" in value or not parts.hostname or parts.username or not port_ok:
            raise ValueError(
                f"{name} holds {value!r}, not a host: use a comma list like "
                "gatehouse.example.com,10.0.0.5:8000 (no scheme, no path)"
            )
        checked.append(value.lower())
    return checked


def check_forwarded_allow_ips(value: str) -> str:
    for part in (p.strip() for p in value.split(",")):
        if part == "*" or not part:
            continue
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise ValueError(
                f"FORWARDED_ALLOW_IPS holds {part!r}: use a comma list of proxy addresses or "
                "networks (127.0.0.1,10.0.0.0/8), or '*'"
            ) from None
    return value


LOGO_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
LOGO_TYPES |= {".webp": "image/webp", ".svg": "image/svg+xml"}


def check_existing_file(value: str | None, name: str) -> str | None:
    kind = "an image (.png, .jpg, .webp or .svg)" if name == "BRAND_LOGO_PATH" else "a PEM file"
    if value and not Path(value).is_file():
        raise ValueError(f"{name}={value!r} names no file: give the path of {kind}")
    if value and name == "BRAND_LOGO_PATH" and Path(value).suffix.lower() not in LOGO_TYPES:
        raise ValueError(f"{name}={value!r} is not {kind}")
    return value or None


def check_var_dir(value: Path) -> Path:
    if value.exists() and not value.is_dir():
        raise ValueError(f"VAR_DIR={str(value)!r} is a file: give a directory Gatehouse may write")
    return value


def check_vault_keys(value: str) -> None:
    try:
        LocalKeyProvider.from_env_value(value)
    except VaultKeyError as exc:
        raise ValueError(f"VAULT_KEYS: {exc}") from None


def missing_secret(name: str, var_dir: Path, env_file: Path | None) -> str:
    """Where the CLI looked for a secret it will not generate, and how to point it there."""
    looked = f"{var_dir.resolve() / name.lower()} (VAR_DIR)"
    if env_file is not None:
        looked = f"{env_file.resolve()} (GATEHOUSE_ENV_FILE) and {looked}"
    return (
        f"{name} is not set: looked in the environment, {looked}; run the command in the "
        "server's directory or set GATEHOUSE_ENV_FILE=/path/to/the/server/.env"
    )


def anchor_paths(settings: Settings, env_file: Path) -> None:
    """Make VAR_DIR and a SQLite file relative to the .env file's folder, not the caller's."""
    base = env_file.resolve().parent
    if not settings.var_dir.is_absolute():
        settings.var_dir = base / settings.var_dir
    url = make_url(settings.database_url)
    if settings.is_sqlite and url.database and url.database != ":memory:":
        if not Path(url.database).is_absolute():
            database = str(base / url.database)
            settings.database_url = url.set(database=database).render_as_string(False)


def production_secret_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    if settings.secret_key is None:
        problems.append(
            "SECRET_KEY is required in production: set it to a random value of at least "
            f"{MIN_SECRET_KEY_LENGTH} characters (python -c 'import secrets; "
            "print(secrets.token_urlsafe(48))')"
        )
    elif len(settings.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
        problems.append(
            f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters"
        )
    elif settings.is_generated_file_value("secret_key", settings.secret_key):
        problems.append(
            "SECRET_KEY is the development key generated into the var directory: "
            "set a fresh production secret"
        )
    if settings.vault_keys is None:
        problems.append(
            "VAULT_KEYS is required in production: set 'kid:base64-32-bytes' "
            "(python -c 'import base64,os; "
            'print("k1:" + base64.b64encode(os.urandom(32)).decode())\')'
        )
    elif settings.is_generated_file_value("vault_keys", settings.vault_keys):
        problems.append(
            "VAULT_KEYS is the development key generated into the var directory: "
            "set a fresh production key"
        )
    return problems


def settings_warnings(settings: Settings) -> list[str]:
    """Settings that work but deserve a second look; `gatehouse serve` prints them."""
    notes: list[str] = []
    if settings.forwarded_allow_ips.strip() == "*":
        notes.append(
            "FORWARDED_ALLOW_IPS='*' trusts X-Forwarded-For/-Proto from anyone who can "
            "reach this port (client IPs drive the sign-in limits): set it to your proxy's "
            "address unless only the proxy can reach Gatehouse"
        )
    if settings.gatehouse_role != "mcp" and any(settings.has_introspection_variables()):
        # One env file often serves every role (compose's .env does).
        notes.append(
            f"AUTH_INTROSPECTION_CLIENT_ID/_SECRET are ignored with GATEHOUSE_ROLE="
            f"{settings.gatehouse_role}: only the mcp role introspects; this role checks "
            "its own database"
        )
    if settings.is_production and settings.is_sqlite:
        notes.append(
            "DATABASE_URL is SQLite: one process on one host only (no --workers, no "
            "replicas); keep the file on a volume and back it up, or use PostgreSQL"
        )
    if settings.is_production and not settings.redis_url:
        notes.append(
            "REDIS_URL is not set: rate limits are counted per process; set it when "
            "running more than one replica"
        )
    return notes


def production_url_problems(settings: Settings) -> list[str]:
    problems: list[str] = []
    issuer_host = urlsplit(settings.public_url).hostname or ""
    if not settings.https and not is_loopback_host(issuer_host):
        problems.append(
            f"PUBLIC_URL must be https in production (got {settings.public_url}); "
            "terminate TLS in front of Gatehouse and set PUBLIC_URL=https://your.host"
        )
    if settings.cimd_allow_loopback or settings.cimd_ca_bundle:
        problems.append("CIMD_ALLOW_LOOPBACK and CIMD_CA_BUNDLE are test-only settings: unset them")
    if (
        settings.gatehouse_role == "mcp"
        and not settings.auth_issuer_url.startswith("https://")
        and not is_loopback_host(urlsplit(settings.auth_issuer_url).hostname or "")
    ):
        problems.append("AUTH_ISSUER_URL must be https in production")
    return problems


def production_deployment_problems(settings: Settings) -> list[str]:
    """Where the data lives and whom the resource server trusts: checked in production."""
    problems: list[str] = []
    if "database_url" not in settings.model_fields_set:
        # A relative SQLite file inside a container's writable layer vanishes with it.
        problems.append(
            "DATABASE_URL is required in production: set "
            "postgresql://user:password@host:5432/gatehouse (the default SQLite file under "
            "./var is for development)"
        )
    elif settings.is_sqlite and settings.gatehouse_role != "all":
        problems.append(
            f"DATABASE_URL is SQLite, but GATEHOUSE_ROLE={settings.gatehouse_role} shares its "
            "database with the other role's processes: use PostgreSQL"
        )
    password = urlsplit(settings.database_url).password
    if password is not None and password.lower() in PLACEHOLDER_PASSWORDS:
        problems.append(
            "DATABASE_URL uses the placeholder password from .env.example: set "
            "POSTGRES_PASSWORD to a random value (openssl rand -hex 24) and restart"
        )
    if settings.gatehouse_role == "mcp" and settings.derived("auth_issuer_url"):
        problems.append(
            "AUTH_ISSUER_URL is required with GATEHOUSE_ROLE=mcp in production: set it to "
            "the auth service's PUBLIC_URL (the same as PUBLIC_URL when one proxy serves "
            "both roles)"
        )
    if settings.gatehouse_role != "mcp" and settings.auth_issuer_url != settings.public_url:
        problems.append(
            f"AUTH_ISSUER_URL only applies to GATEHOUSE_ROLE=mcp; with "
            f"GATEHOUSE_ROLE={settings.gatehouse_role} the issuer is PUBLIC_URL: "
            "unset AUTH_ISSUER_URL"
        )
    if settings.email_flows and settings.smtp_url is None:
        problems.append(
            "SMTP_URL is required in production: account recovery and verification send "
            "mail; set smtp://user:password@host:587 (STARTTLS) or smtps://host:465"
        )
    if settings.mcp_toolsets:
        problems.append(
            f"MCP_TOOLSETS={','.join(settings.mcp_toolsets)} is for tests only (the MCP "
            "conformance suite's fixtures, reachable by any signed-in user): unset it in "
            "production"
        )
    return problems


def mail_problems(settings: Settings) -> list[str]:
    # Checked here, not in a field validator: pydantic's errors quote the input, and this
    # one may hold the SMTP password.
    problems = [
        f"{name} is set but SMTP_URL is not: set SMTP_URL too (smtp://host:587), or unset {name}"
        for name, value in (
            ("SMTP_USERNAME", settings.smtp_username),
            ("SMTP_PASSWORD", settings.smtp_password),
        )
        if value and settings.smtp_url is None
    ]
    if settings.mail_from and "@" not in parseaddr(settings.mail_from)[1]:
        problems.append(
            f"MAIL_FROM={settings.mail_from!r} holds no address: use Name <sender@example.com>"
        )
    if problems:
        return problems
    if settings.smtp_url is None:
        return []
    parts = urlsplit(settings.smtp_url.get_secret_value())
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return ["SMTP_URL has a port that is not a number"]
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        return ["SMTP_URL must be smtp://[user:password@]host[:port] or smtps://…"]
    return []


def introspection_problems(settings: Settings) -> list[str]:
    has_id, has_secret = settings.has_introspection_variables()
    if settings.gatehouse_role == "mcp" and has_id != has_secret:
        return [
            "AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_CLIENT_SECRET go together: "
            "set both (printed by `gatehouse clients add-resource-server` on the auth "
            "service) or neither"
        ]
    client_id = settings.auth_introspection_client_id
    # An ordinary client's credentials would pass the issuer's check and then learn
    # nothing but "inactive".
    if (
        settings.gatehouse_role == "mcp"
        and has_id
        and not client_id.startswith(RESOURCE_SERVER_ID_PREFIX)
    ):
        return [
            f"AUTH_INTROSPECTION_CLIENT_ID={client_id} is not a resource server's id "
            "(gh_rs_…): use the pair `gatehouse clients add-resource-server` prints"
        ]
    return []
