"""One Settings object for every variable in DESIGN.md.

In development the two secrets (SECRET_KEY, VAULT_KEYS) are generated once into the var
directory (mode 0600) with a warning. In production a missing or generated secret, or a plain-http
issuer that is not loopback, is a start-up error that names the variable and says how to fix it.
"""

from __future__ import annotations

import base64
import logging
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.kit import secret_files
from app.kit.hosts import is_loopback_host

logger = logging.getLogger("gatehouse.config")

MIN_SECRET_KEY_LENGTH = 32
# The placeholder .env.example ships for POSTGRES_PASSWORD; production refuses it.
PLACEHOLDER_PASSWORDS = frozenset({"changethis"})
KNOWN_CONNECTORS = ("github",)
# The client_id prefix of a resource server's introspection credentials (`gatehouse clients
# add-resource-server`); AUTH_INTROSPECTION_CLIENT_ID must carry it.
RESOURCE_SERVER_ID_PREFIX = "gh_rs_"


class ConfigError(Exception):
    """A setting is missing or unsafe; the message names the variable and the fix."""


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    database_url: str = "sqlite+aiosqlite:///./var/gatehouse.db"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str = ""
    gatehouse_env: Literal["development", "production"] = "development"
    gatehouse_role: Literal["all", "auth", "mcp"] = "all"
    auth_issuer_url: str = ""
    # Where the `mcp` role fetches that issuer's metadata and keys when its public URL is not
    # reachable from inside (compose: http://auth:8000). Defaults to AUTH_ISSUER_URL.
    auth_issuer_internal_url: str = ""
    # The `mcp` role's credentials at that issuer's /introspect (from `gatehouse clients
    # add-resource-server`). Set: revocation is checked by introspection; unset: by polling the
    # shared database. Either way a revoked grant is refused within 5 seconds.
    auth_introspection_client_id: str = ""
    auth_introspection_client_secret: SecretStr | None = None
    secret_key: SecretStr | None = None
    vault_keys: SecretStr | None = None
    redis_url: str | None = None
    allow_signup: bool = True
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_token_ttl: int = Field(default=3600, ge=60, le=86400)
    refresh_reuse_grace: int = Field(default=120, ge=0, le=600)
    connectors: Annotated[list[str], NoDecode] = Field(default_factory=list)
    github_api_url: str = "https://api.github.com"

    # Not in the DESIGN.md table: operational knobs with safe defaults.
    var_dir: Path = Path("./var")  # VAR_DIR
    session_idle_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    session_max_ttl: int = Field(default=30 * 24 * 3600, ge=60)
    signin_limit_account: str = "10 per 15 minutes"
    signin_limit_ip: str = "50 per 15 minutes"
    signup_limit_ip: str = "20 per hour"
    credential_limit_user: str = "10 per hour"
    credential_limit_ip: str = "30 per hour"
    connector_cache_tz: str = "UTC"  # the day upstream results are cached until ends here
    connector_cache_ttl: int | None = Field(default=None, ge=1)  # seconds, instead of the day
    auth_code_ttl: int = Field(default=120, ge=10, le=600)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=300)
    # Hosted clients (claude.ai, ChatGPT) register every person's connection from a few shared
    # egress addresses: the per-address limit is a flood bound, far above a human rate.
    registration_limit_ip: str = "1000 per hour"
    # Never-used registrations kept at most; the oldest goes first when a new one needs room.
    registration_max_unused: int = Field(default=10000, ge=1)
    registration_unused_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    purge_interval: int = Field(default=3600, ge=0)  # 0 turns the in-app purge off
    # Test-only: trust an extra CA and allow loopback addresses when fetching client metadata
    # documents. Both are refused in production.
    cimd_ca_bundle: str | None = None
    cimd_allow_loopback: bool = False
    # Read by `gatehouse serve` (uvicorn's proxy headers); here so the start-up checks see it.
    forwarded_allow_ips: str = "127.0.0.1"
    # Values this object derived rather than read: production wants some of them explicit.
    _derived: set[str] = PrivateAttr(default_factory=set)

    @field_validator("allowed_hosts", "allowed_origins", "connectors", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator(
        "auth_introspection_client_id", "auth_introspection_client_secret", mode="before"
    )
    @classmethod
    def _stripped(cls, value: object) -> object:
        # Pasted or appended to .env, a value can carry a stray space or a CR from a terminal.
        return value.strip() if isinstance(value, str) else value

    @field_validator("secret_key", "vault_keys", "auth_introspection_client_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `SECRET_KEY=` (or a compose file's unset `${SECRET_KEY}`) means "not set", never the
        # empty key: development generates one, production refuses to start.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("connectors")
    @classmethod
    def _known_connectors(cls, value: list[str]) -> list[str]:
        names = [v.lower() for v in value]
        unknown = [n for n in names if n not in KNOWN_CONNECTORS]
        if unknown:
            raise ValueError(
                f"CONNECTORS names unknown connectors {', '.join(unknown)}; "
                f"available: {', '.join(KNOWN_CONNECTORS)}"
            )
        return list(dict.fromkeys(names))

    @field_validator("connector_cache_tz")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"CONNECTOR_CACHE_TZ is not a known time zone: {value!r}") from exc
        return value

    @field_validator("public_url", "auth_issuer_url", "auth_issuer_internal_url", "github_api_url")
    @classmethod
    def _no_trailing_slash(cls, value: str, info: ValidationInfo) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        name = (info.field_name or "").upper()
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"{name} must not have a query or fragment")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        for prefix in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+asyncpg://" + value[len(prefix) :]
        if value.startswith("sqlite://") and not value.startswith("sqlite+aiosqlite://"):
            return "sqlite+aiosqlite://" + value[len("sqlite://") :]
        if not value.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
            raise ValueError("DATABASE_URL must be a postgresql:// or sqlite:// URL")
        return value

    @model_validator(mode="after")
    def _derive(self) -> Settings:
        if not self.public_url:
            self._derived.add("public_url")
            host = f"[{self.host}]" if ":" in self.host else self.host
            if host in ("0.0.0.0", "[::]"):  # noqa: S104 - a bind-all address is no issuer
                host = "127.0.0.1"
            self.public_url = f"http://{host}:{self.port}"
        if not self.auth_issuer_url:
            self._derived.add("auth_issuer_url")
            self.auth_issuer_url = self.public_url
        return self

    # -- derived values ---------------------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.gatehouse_env == "production"

    @property
    def issuer(self) -> str:
        return self.public_url

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def vault_keys_value(self) -> str:
        if self.vault_keys is None:
            raise ConfigError("VAULT_KEYS is not set")
        return self.vault_keys.get_secret_value()

    @property
    def mcp_resource(self) -> str:
        """The RFC 8707 resource identifier of our MCP endpoint: the audience of our tokens."""
        return self.public_url + "/mcp"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def secret_key_bytes(self) -> bytes:
        if self.secret_key is None:
            raise ConfigError("SECRET_KEY is not set")
        return self.secret_key.get_secret_value().encode()

    def check(self) -> Settings:
        """Fill in development secrets and refuse unsafe production configurations."""
        problems: list[str] = []
        if self.is_production:
            problems.extend(self._production_secret_problems())
            problems.extend(self._production_url_problems())
            problems.extend(self._production_deployment_problems())
        problems.extend(self._introspection_problems())
        if problems:
            raise ConfigError("; ".join(problems))
        if self.secret_key is None:
            self.secret_key = SecretStr(
                self._generate_once("secret_key", secrets.token_urlsafe(48))
            )
        if self.vault_keys is None:
            key = base64.b64encode(secrets.token_bytes(32)).decode()
            self.vault_keys = SecretStr(self._generate_once("vault_keys", f"dev1:{key}"))
        return self

    def _production_secret_problems(self) -> list[str]:
        problems: list[str] = []
        if self.secret_key is None:
            problems.append(
                "SECRET_KEY is required in production: set it to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        elif len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
            problems.append(
                f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} random characters"
            )
        elif self._is_generated_file_value("secret_key", self.secret_key):
            problems.append(
                "SECRET_KEY is the development key generated into the var directory: "
                "set a fresh production secret"
            )
        if self.vault_keys is None:
            problems.append(
                "VAULT_KEYS is required in production: set 'kid:base64-32-bytes' "
                "(python -c 'import base64,os; "
                'print("k1:" + base64.b64encode(os.urandom(32)).decode())\')'
            )
        elif self._is_generated_file_value("vault_keys", self.vault_keys):
            problems.append(
                "VAULT_KEYS is the development key generated into the var directory: "
                "set a fresh production key"
            )
        return problems

    def _production_url_problems(self) -> list[str]:
        problems: list[str] = []
        issuer_host = urlsplit(self.public_url).hostname or ""
        if not self.https and not is_loopback_host(issuer_host):
            problems.append(
                f"PUBLIC_URL must be https in production (got {self.public_url}); "
                "terminate TLS in front of Gatehouse and set PUBLIC_URL=https://your.host"
            )
        if self.cimd_allow_loopback or self.cimd_ca_bundle:
            problems.append(
                "CIMD_ALLOW_LOOPBACK and CIMD_CA_BUNDLE are test-only settings: unset them"
            )
        if (
            self.gatehouse_role == "mcp"
            and not self.auth_issuer_url.startswith("https://")
            and not is_loopback_host(urlsplit(self.auth_issuer_url).hostname or "")
        ):
            problems.append("AUTH_ISSUER_URL must be https in production")
        return problems

    def _production_deployment_problems(self) -> list[str]:
        """Where the data lives and whom the resource server trusts: checked in production."""
        problems: list[str] = []
        if "database_url" not in self.model_fields_set:
            # A relative SQLite file inside a container's writable layer vanishes with it.
            problems.append(
                "DATABASE_URL is required in production: set "
                "postgresql://user:password@host:5432/gatehouse (the default SQLite file under "
                "./var is for development)"
            )
        elif self.is_sqlite and self.gatehouse_role != "all":
            problems.append(
                f"DATABASE_URL is SQLite, but GATEHOUSE_ROLE={self.gatehouse_role} shares its "
                "database with the other role's processes: use PostgreSQL"
            )
        password = urlsplit(self.database_url).password
        if password is not None and password.lower() in PLACEHOLDER_PASSWORDS:
            problems.append(
                "DATABASE_URL uses the placeholder password from .env.example: set "
                "POSTGRES_PASSWORD to a random value (openssl rand -hex 24) and restart"
            )
        if self.gatehouse_role == "mcp" and "auth_issuer_url" in self._derived:
            problems.append(
                "AUTH_ISSUER_URL is required with GATEHOUSE_ROLE=mcp in production: set it to "
                "the auth service's PUBLIC_URL (the same as PUBLIC_URL when one proxy serves "
                "both roles)"
            )
        if self.gatehouse_role != "mcp" and self.auth_issuer_url != self.public_url:
            problems.append(
                f"AUTH_ISSUER_URL only applies to GATEHOUSE_ROLE=mcp; with "
                f"GATEHOUSE_ROLE={self.gatehouse_role} the issuer is PUBLIC_URL: "
                "unset AUTH_ISSUER_URL"
            )
        return problems

    @property
    def uses_introspection(self) -> bool:
        return self.gatehouse_role == "mcp" and all(self._has_introspection_variables())

    def _has_introspection_variables(self) -> tuple[bool, bool]:
        return (
            bool(self.auth_introspection_client_id),
            self.auth_introspection_client_secret is not None,
        )

    def _introspection_problems(self) -> list[str]:
        has_id, has_secret = self._has_introspection_variables()
        if self.gatehouse_role == "mcp" and has_id != has_secret:
            return [
                "AUTH_INTROSPECTION_CLIENT_ID and AUTH_INTROSPECTION_CLIENT_SECRET go together: "
                "set both (printed by `gatehouse clients add-resource-server` on the auth "
                "service) or neither"
            ]
        client_id = self.auth_introspection_client_id
        # An ordinary client's credentials would pass the issuer's check and then learn
        # nothing but "inactive".
        if (
            self.gatehouse_role == "mcp"
            and has_id
            and not client_id.startswith(RESOURCE_SERVER_ID_PREFIX)
        ):
            return [
                f"AUTH_INTROSPECTION_CLIENT_ID={client_id} is not a resource server's id "
                "(gh_rs_…): use the pair `gatehouse clients add-resource-server` prints"
            ]
        return []

    def warnings(self) -> list[str]:
        """Settings that work but deserve a second look; `gatehouse serve` prints them."""
        notes: list[str] = []
        if self.forwarded_allow_ips.strip() == "*":
            notes.append(
                "FORWARDED_ALLOW_IPS='*' trusts X-Forwarded-For/-Proto from anyone who can "
                "reach this port (client IPs drive the sign-in limits): set it to your proxy's "
                "address unless only the proxy can reach Gatehouse"
            )
        if self.gatehouse_role != "mcp" and any(self._has_introspection_variables()):
            # One env file often serves every role (compose's .env does).
            notes.append(
                f"AUTH_INTROSPECTION_CLIENT_ID/_SECRET are ignored with GATEHOUSE_ROLE="
                f"{self.gatehouse_role}: only the mcp role introspects; this role checks "
                "its own database"
            )
        if self.is_production and self.is_sqlite:
            notes.append(
                "DATABASE_URL is SQLite: one process on one host only (no --workers, no "
                "replicas); keep the file on a volume and back it up, or use PostgreSQL"
            )
        if self.is_production and not self.redis_url:
            notes.append(
                "REDIS_URL is not set: rate limits are counted per process; set it when "
                "running more than one replica"
            )
        return notes

    def _is_generated_file_value(self, name: str, value: SecretStr) -> bool:
        return secret_files.holds(self.var_dir / name, value.get_secret_value())

    def _generate_once(self, name: str, fresh: str) -> str:
        return secret_files.generate_once(self.var_dir / name, fresh, variable=name.upper())


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides) and apply the safety checks."""
    return Settings(**overrides).check()  # type: ignore[arg-type]
