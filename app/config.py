"""One Settings object for every variable in DESIGN.md.

In development the two secrets (SECRET_KEY, VAULT_KEYS) are generated once into the var
directory (mode 0600) with a warning. In production a missing or generated secret, or a plain-http
issuer that is not loopback, is a start-up error that names the variable and says how to fix it.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app import config_checks, config_fields
from app.identity.settings import ProviderConfig, collect_variables, parse_providers
from app.kit import secret_files

logger = logging.getLogger("gatehouse.config")


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
    require_mfa: bool = False  # REQUIRE_MFA: approving a client needs a second factor
    allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    access_token_ttl: int = Field(default=3600, ge=60, le=86400)
    refresh_reuse_grace: int = Field(default=120, ge=0, le=600)
    connectors: Annotated[list[str], NoDecode] = Field(default_factory=list)
    github_api_url: str = "https://api.github.com"
    # Upstream identity providers (app/identity/settings.py reads their OIDC_<NAME>_* values).
    oidc_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    oidc_microsoft_tenant: str = ""
    password_signin: bool = True

    # Outgoing mail (app/mail) and account recovery (app/auth/recovery). SMTP_URL may carry a
    # password, so it is a secret; SMTP_USERNAME / SMTP_PASSWORD, when set, win over the URL's.
    smtp_url: SecretStr | None = None
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    mail_from: str = ""
    require_verified_email: bool = False
    # Extra MCP toolsets: "conformance" is the MCP conformance suite's fixtures (tests only).
    mcp_toolsets: Annotated[list[str], NoDecode] = Field(default_factory=list)

    brand_name: str = Field(default="Gatehouse", min_length=1, max_length=60)
    brand_logo_path: str | None = None  # BRAND_LOGO_PATH: a PNG, JPEG, WebP or SVG file

    # Not in the DESIGN.md table: operational knobs with safe defaults.
    var_dir: Path = Path("./var")  # VAR_DIR
    session_idle_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    session_max_ttl: int = Field(default=30 * 24 * 3600, ge=60)
    signin_limit_account: str = "10 per 15 minutes"
    signin_limit_ip: str = "50 per 15 minutes"
    # Failed sign-ins to one account from browsers that have never signed in to it, from every
    # address together; a browser that has (it carries a device cookie) is not held by it.
    signin_limit_account_total: str = "50 per 15 minutes"
    # Password hashes in flight per process (None: the cores available, less one); the rest
    # wait, then 503.
    password_hash_concurrency: int | None = Field(default=None, ge=1, le=256)
    # How hash threads yield to the event loop: "low" (nice +10, a hash always progresses),
    # "idle" (SCHED_IDLE: the loop always comes first; a fully busy core starves sign-in) or
    # "auto" (SCHED_IDLE, and a hash still not done after a second also goes to a nice +10
    # thread: the loop comes first and sign-in still progresses on a fully busy host).
    password_hash_priority: Literal["low", "idle", "auto"] = "auto"  # noqa: S105 - not a secret
    # Seconds a request waits for a free password-hash slot before it is refused.
    password_hash_wait: float = Field(default=5.0, ge=0, le=60)
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
    verify_limit_account: str = "5 per hour"
    verify_limit_ip: str = "20 per hour"
    forgot_limit_email: str = "5 per hour"
    forgot_limit_ip: str = "20 per hour"
    email_change_limit_account: str = "5 per hour"
    mail_timeout: float = Field(default=30.0, gt=0, le=300)  # seconds per SMTP attempt
    mail_attempts: int = Field(default=4, ge=1, le=10)
    mail_backoff: float = Field(default=2.0, ge=0, le=600)  # seconds before the first retry
    registration_unused_ttl: int = Field(default=7 * 24 * 3600, ge=60)
    purge_interval: int = Field(default=3600, ge=0)  # 0 turns the in-app purge off
    # Test-only: trust an extra CA and allow loopback addresses when fetching client metadata
    # documents. Both are refused in production.
    cimd_ca_bundle: str | None = None
    cimd_allow_loopback: bool = False
    # Read by `gatehouse serve` (uvicorn's proxy headers); here so the start-up checks see it.
    forwarded_allow_ips: str = "127.0.0.1"
    log_format: Literal["json", "text"] | None = None  # read by app/telemetry.py
    log_level: Literal["debug", "info", "warning", "error"] = "info"  # debug: tracebacks too
    # Values this object derived rather than read: production wants some of them explicit.
    _derived: set[str] = PrivateAttr(default_factory=set)
    _identity_providers: tuple[ProviderConfig, ...] = PrivateAttr(default=())

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        # OIDC_<NAME>_* are not fields (the deployer picks NAME): app/identity/settings.py
        # reads them from the environment and from explicit values.
        try:
            self._identity_providers = parse_providers(
                self.oidc_providers,
                collect_variables(values, os.environ),
                microsoft_tenant=self.oidc_microsoft_tenant,
                github_api_url=self.github_api_url,
            )
        except ValueError as exc:  # not a ValidationError, which would print every value
            raise ConfigError(str(exc)) from None

    @field_validator(
        "allowed_hosts",
        "allowed_origins",
        "connectors",
        "oidc_providers",
        "mcp_toolsets",
        mode="before",
    )
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

    @field_validator(
        "secret_key",
        "vault_keys",
        "auth_introspection_client_secret",
        "smtp_url",
        "smtp_password",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # `SECRET_KEY=` (or a compose file's unset `${SECRET_KEY}`) means "not set", never the
        # empty key: development generates one, production refuses to start.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("host", "secret_key", "log_level", mode="before")
    @classmethod
    def _checked(cls, value: object, info: ValidationInfo) -> object:
        return config_checks.check_before(info.field_name or "", value)

    @field_validator(*config_fields.CHECKED_FIELDS)
    @classmethod
    def _checked_value(cls, value: object, info: ValidationInfo) -> object:
        return config_fields.check_field(info.field_name or "", value)

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

    @property
    def identity_providers(self) -> tuple[ProviderConfig, ...]:
        return self._identity_providers

    # -- derived values ---------------------------------------------------------------------------

    def derived(self, name: str) -> bool:
        """Whether this object derived `name` rather than read it."""
        return name in self._derived

    @property
    def is_production(self) -> bool:
        return self.gatehouse_env == "production"

    @property
    def issuer(self) -> str:
        return self.public_url

    @property
    def https(self) -> bool:
        return self.public_url.startswith("https://")

    def _required_secret(self, variable: str, value: SecretStr | None) -> str:
        """The secret's text; a ConfigError saying where it was looked for when it is unset."""
        if value is None:
            raise ConfigError(config_checks.missing_secret(variable, self.var_dir, env_file_path()))
        return value.get_secret_value()

    @property
    def vault_keys_value(self) -> str:
        return self._required_secret("VAULT_KEYS", self.vault_keys)

    @property
    def mcp_resource(self) -> str:
        """The RFC 8707 resource identifier of our MCP endpoint: the audience of our tokens."""
        return self.public_url + "/mcp"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @cached_property
    def secret_key_bytes(self) -> bytes:
        return self._required_secret("SECRET_KEY", self.secret_key).encode()

    def check(self, *, generate_secrets: bool = True) -> Settings:
        """Fill in development secrets and refuse unsafe production configurations.

        `generate_secrets=False` (the CLI) reads the server's generated secrets but never writes
        one: a missing secret is an error that says where it looked, when a command needs it.
        """
        problems: list[str] = []
        if self.is_production:
            problems.extend(config_checks.production_secret_problems(self))
            problems.extend(config_checks.production_url_problems(self))
            problems.extend(config_checks.production_deployment_problems(self))
        problems.extend(config_checks.introspection_problems(self))
        problems.extend(config_checks.mail_problems(self))
        if problems:
            raise ConfigError("\n".join(problems))
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        fresh = {"secret_key": secrets.token_urlsafe(48), "vault_keys": f"dev1:{key}"}
        for name, value in fresh.items():
            if getattr(self, name) is None:
                found = self._generate_once(name, value, generate_secrets)
                setattr(self, name, None if found is None else SecretStr(found))
        return self

    @property
    def email_flows(self) -> bool:
        """Verification, reset and email-change mail go out from the roles that serve pages."""
        return self.gatehouse_role in ("all", "auth")

    @property
    def uses_introspection(self) -> bool:
        return self.gatehouse_role == "mcp" and all(self.has_introspection_variables())

    def has_introspection_variables(self) -> tuple[bool, bool]:
        return (
            bool(self.auth_introspection_client_id),
            self.auth_introspection_client_secret is not None,
        )

    def warnings(self) -> list[str]:
        """Settings that work but deserve a second look; `gatehouse serve` prints them."""
        return config_checks.settings_warnings(self)

    def _missing(self, name: str) -> str:
        return config_checks.missing_secret(name, self.var_dir, env_file_path())

    def is_generated_file_value(self, name: str, value: SecretStr) -> bool:
        return secret_files.holds(self.var_dir / name, value.get_secret_value())

    def _generate_once(self, name: str, fresh: str, generate: bool) -> str | None:
        path = self.var_dir / name
        if not generate:
            return path.read_text().strip() if path.is_file() else None
        return secret_files.generate_once(path, fresh, variable=name.upper())


def env_file_path() -> Path | None:
    """GATEHOUSE_ENV_FILE, or ./.env when there is one: the file the server and the CLI read."""
    named = os.environ.get("GATEHOUSE_ENV_FILE", "").strip()
    if not named:
        return Path(".env") if Path(".env").is_file() else None
    if not Path(named).is_file():
        raise ConfigError(
            f"GATEHOUSE_ENV_FILE={named!r} names no file: give the path of the server's .env"
        )
    return Path(named)


def load_settings(*, generate_secrets: bool = True, **overrides: object) -> Settings:
    """Read the environment and the .env file (plus explicit overrides); apply the checks.

    Relative paths in the file (VAR_DIR, a SQLite DATABASE_URL) are relative to its folder,
    so a command run from elsewhere with GATEHOUSE_ENV_FILE finds the server's files.
    """
    env_file = env_file_path()
    try:
        settings = Settings(_env_file=env_file, **overrides)
    except ValidationError as exc:
        raise ConfigError(config_checks.explain_validation_error(exc)) from None
    if env_file is not None:
        config_checks.anchor_paths(settings, env_file)
    return settings.check(generate_secrets=generate_secrets)
