"""One Settings object for every variable in DESIGN.md.

In development the two secrets (SECRET_KEY, VAULT_KEYS) are generated once into the var
directory (mode 0600) with a warning. In production a missing or generated secret, or a plain-http
issuer that is not loopback, is a start-up error that names the variable and says how to fix it.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger("gatehouse.config")

MIN_SECRET_KEY_LENGTH = 32


class ConfigError(Exception):
    """A setting is missing or unsafe; the message names the variable and the fix."""


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    secret_key: SecretStr | None = None
    vault_keys: SecretStr | None = None
    redis_url: str | None = None
    allow_signup: bool = True
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_token_ttl: int = Field(default=3600, ge=60, le=86400)
    refresh_reuse_grace: int = Field(default=30, ge=0, le=600)
    connectors: Annotated[list[str], NoDecode] = Field(default_factory=list)
    github_api_url: str = "https://api.github.com"

    # Not in the DESIGN.md table: operational knobs with safe defaults.
    var_dir: Path = Path("./var")  # VAR_DIR
    session_idle_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    session_max_ttl: int = Field(default=30 * 24 * 3600, ge=60)
    signin_limit_account: str = "10 per 15 minutes"
    signin_limit_ip: str = "50 per 15 minutes"
    signup_limit_ip: str = "20 per hour"
    auth_code_ttl: int = Field(default=120, ge=10, le=600)
    refresh_token_ttl: int = Field(default=30 * 24 * 3600, ge=300)
    registration_limit_ip: str = "30 per hour"
    registration_unused_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    purge_interval: int = Field(default=3600, ge=0)  # 0 turns the in-app purge off
    # Test-only: trust an extra CA and allow loopback addresses when fetching client metadata
    # documents. Both are refused in production.
    cimd_ca_bundle: str | None = None
    cimd_allow_loopback: bool = False

    @field_validator("allowed_hosts", "allowed_origins", "connectors", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("secret_key", "vault_keys", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `SECRET_KEY=` (or a compose file's unset `${SECRET_KEY}`) means "not set", never the
        # empty key: development generates one, production refuses to start.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("public_url", "auth_issuer_url", "github_api_url")
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
            host = f"[{self.host}]" if ":" in self.host else self.host
            if host in ("0.0.0.0", "[::]"):  # noqa: S104 - a bind-all address is no issuer
                host = "127.0.0.1"
            self.public_url = f"http://{host}:{self.port}"
        if not self.auth_issuer_url:
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
        issuer_host = urlsplit(self.public_url).hostname or ""
        if self.is_production:
            if self.secret_key is None:
                problems.append(
                    "SECRET_KEY is required in production: set it to a random value of at least "
                    f"{MIN_SECRET_KEY_LENGTH} characters (python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
            elif len(self.secret_key.get_secret_value()) < MIN_SECRET_KEY_LENGTH:
                problems.append(
                    f"SECRET_KEY is too short: use at least {MIN_SECRET_KEY_LENGTH} "
                    "random characters"
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

    def _secret_path(self, name: str) -> Path:
        return self.var_dir / name

    def _is_generated_file_value(self, name: str, value: SecretStr) -> bool:
        path = self._secret_path(name)
        try:
            return path.read_text().strip() == value.get_secret_value()
        except OSError:
            return False

    def _generate_once(self, name: str, fresh: str) -> str:
        path = self._secret_path(name)
        variable = name.upper()
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write a private temporary file, then link it into place: link() fails if another
        # process got there first, and nobody ever reads a half-written key.
        tmp = path.with_name(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(fresh + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
        finally:
            tmp.unlink()
        logger.warning(
            "%s was not set: generated a development value into %s (never use it in production)",
            variable,
            path,
        )
        return fresh


def load_settings(**overrides: object) -> Settings:
    """Read the environment (plus explicit overrides) and apply the safety checks."""
    return Settings(**overrides).check()  # type: ignore[arg-type]
