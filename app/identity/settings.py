"""Upstream identity providers from OIDC_PROVIDERS and OIDC_<NAME>_* variables.

Every problem is a ValueError whose message names the variable and says what to set, so that
start-up refuses a bad provider instead of showing a broken button.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from joserfc.jwk import ECKey, RSAKey

ProviderKind = Literal["oidc", "github"]
ClientAuth = Literal["client_secret_basic", "client_secret_post", "private_key_jwt"]

_NAME = re.compile(r"^[a-z][a-z0-9]{0,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
SUFFIXES = (
    "ISSUER",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "CLIENT_AUTH",
    "PRIVATE_KEY",
    "PRIVATE_KEY_ID",
    "SCOPES",
    "LABEL",
    "ALLOWED_DOMAINS",
)
MICROSOFT_TENANT_ISSUER = "https://login.microsoftonline.com/{tenant}/v2.0"
GITHUB_WEB_URL = "https://github.com"
GITHUB_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class Preset:
    label: str
    issuer: str
    scopes: str
    kind: ProviderKind = "oidc"


PRESETS = {
    "google": Preset("Google", "https://accounts.google.com", "openid email profile"),
    "microsoft": Preset("Microsoft", MICROSOFT_TENANT_ISSUER, "openid email profile"),
    "github": Preset("GitHub", GITHUB_WEB_URL, "read:user user:email", kind="github"),
}


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: ProviderKind
    label: str
    issuer: str  # OIDC: the issuer identifier; GitHub: the web base of its OAuth endpoints
    client_id: str
    client_secret: str = field(repr=False)
    client_auth: ClientAuth
    scopes: tuple[str, ...]
    allowed_domains: frozenset[str]
    private_key_pem: str = field(default="", repr=False)
    private_key_id: str = ""
    api_url: str = ""  # GitHub only: its REST API (GITHUB_API_URL)

    def variable(self, suffix: str) -> str:
        return variable(self.name, suffix)

    def callback_path(self) -> str:
        return f"/sign-in/{self.name}/callback"

    def allows_domain(self, email: str) -> bool:
        return email.rpartition("@")[2].lower() in self.allowed_domains


def variable(name: str, suffix: str) -> str:
    return f"OIDC_{name.upper()}_{suffix}"


def collect_variables(data: Mapping[str, object], environ: Mapping[str, str]) -> dict[str, str]:
    """Every OIDC_<NAME>_<SUFFIX> value, from the environment and then explicit settings."""
    found: dict[str, str] = {}
    for source in (environ, data):
        for key, value in source.items():
            upper = key.upper()
            if upper.startswith("OIDC_") and upper.endswith(SUFFIXES) and isinstance(value, str):
                found[upper] = value
    return found


def parse_providers(
    names: list[str],
    variables: Mapping[str, str],
    *,
    microsoft_tenant: str,
    github_api_url: str,
) -> tuple[ProviderConfig, ...]:
    seen: set[str] = set()
    providers = []
    for raw in names:
        name = raw.strip().lower()
        if not _NAME.match(name):
            raise ValueError(
                f"OIDC_PROVIDERS names {raw!r}: use short names of letters and digits, "
                "starting with a letter (google, entra, okta)"
            )
        if name in seen:
            raise ValueError(f"OIDC_PROVIDERS names {name} twice")
        seen.add(name)
        providers.append(
            _provider(
                name,
                variables,
                microsoft_tenant=microsoft_tenant,
                github_api_url=github_api_url,
            )
        )
    return tuple(providers)


def _provider(
    name: str, variables: Mapping[str, str], *, microsoft_tenant: str, github_api_url: str
) -> ProviderConfig:
    def get(suffix: str) -> str:
        return variables.get(variable(name, suffix), "").strip()

    preset = PRESETS.get(name)
    kind: ProviderKind = preset.kind if preset else "oidc"
    issuer = get("ISSUER") or (preset.issuer if preset else "")
    if name == "github" and not get("ISSUER") and github_api_url.rstrip("/").endswith("/api/v3"):
        issuer = github_api_url.rstrip("/").removesuffix("/api/v3")  # GitHub Enterprise Server
    if not issuer:
        raise ValueError(
            f"{variable(name, 'ISSUER')} is required: set it to the provider's issuer URL "
            "(the address before /.well-known/openid-configuration)"
        )
    if name == "microsoft" and "{tenant}" in issuer:
        issuer = issuer.replace("{tenant}", _tenant(microsoft_tenant))
    # An OpenID issuer is kept exactly as given (Auth0's ends with "/"): ID tokens name it so.
    issuer = _url(issuer, variable(name, "ISSUER"), keep_slash=kind == "oidc")
    client_id = get("CLIENT_ID")
    if not client_id:
        raise ValueError(
            f"{variable(name, 'CLIENT_ID')} is required: the client id the provider gave "
            "Gatehouse when you registered it"
        )
    client_auth, secret, key_pem = _client_auth(name, get, kind)
    return ProviderConfig(
        name=name,
        kind=kind,
        label=get("LABEL")[:60] or (preset.label if preset else name.capitalize()),
        issuer=issuer,
        client_id=client_id,
        client_secret=secret,
        client_auth=client_auth,
        scopes=_scopes(name, get("SCOPES"), preset, kind),
        allowed_domains=_domains(name, get("ALLOWED_DOMAINS")),
        private_key_pem=key_pem,
        private_key_id=get("PRIVATE_KEY_ID"),
        api_url=_url(github_api_url, "GITHUB_API_URL") if kind == "github" else "",
    )


def _tenant(value: str) -> str:
    tenant = value.strip() or "common"
    if not re.match(r"^[A-Za-z0-9.-]{1,100}$", tenant):
        raise ValueError(
            "OIDC_MICROSOFT_TENANT must be a tenant id (a GUID), a domain, or common / "
            f"organizations / consumers; got {value!r}"
        )
    return tenant


def _url(value: str, name: str, *, keep_slash: bool = False) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL, got {value!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not have a query or fragment")
    return value if keep_slash else value.rstrip("/")


def _client_auth(
    name: str, get: Callable[[str], str], kind: ProviderKind
) -> tuple[ClientAuth, str, str]:
    method = get("CLIENT_AUTH").lower() or "client_secret_basic"
    secret = get("CLIENT_SECRET")
    if method not in ("client_secret_basic", "client_secret_post", "private_key_jwt"):
        raise ValueError(
            f"{variable(name, 'CLIENT_AUTH')} must be client_secret_basic, client_secret_post "
            f"or private_key_jwt, got {method!r}"
        )
    if method == "private_key_jwt":
        if kind == "github":
            raise ValueError(f"{variable(name, 'CLIENT_AUTH')}: GitHub takes only a secret")
        return "private_key_jwt", "", _private_key(name, get("PRIVATE_KEY"))
    if not secret:
        raise ValueError(
            f"{variable(name, 'CLIENT_SECRET')} is required (or set "
            f"{variable(name, 'CLIENT_AUTH')}=private_key_jwt with {variable(name, 'PRIVATE_KEY')})"
        )
    return method, secret, ""  # type: ignore[return-value]


def _private_key(name: str, value: str) -> str:
    """A PEM private key, given inline or as the path of a file holding it."""
    key_var = variable(name, "PRIVATE_KEY")
    if not value:
        raise ValueError(f"{key_var} is required with private_key_jwt: a PEM key or its path")
    pem = value
    if "-----BEGIN" not in value:
        try:
            pem = Path(value).read_text()
        except OSError as exc:
            raise ValueError(
                f"{key_var} is not a PEM key and no file {value!r} can be read"
            ) from exc
    pem = pem.replace("\\n", "\n")  # a key pasted into one line of an env file
    key = load_private_key(pem)
    if key is None or not key.is_private:
        raise ValueError(f"{key_var} is not a PEM RSA or EC private key")
    return pem


def load_private_key(pem: str) -> RSAKey | ECKey | None:
    for kind in (RSAKey, ECKey):
        try:
            return kind.import_key(pem)
        except Exception:  # noqa: BLE001, S112 - not this kind; try the next
            continue
    return None


def _scopes(name: str, value: str, preset: Preset | None, kind: ProviderKind) -> tuple[str, ...]:
    scopes = tuple(dict.fromkeys(value.replace(",", " ").split())) if value else ()
    if not scopes:
        scopes = tuple((preset.scopes if preset else "openid email profile").split())
    if kind == "oidc" and "openid" not in scopes:
        raise ValueError(f"{variable(name, 'SCOPES')} must include openid")
    return scopes


def _domains(name: str, value: str) -> frozenset[str]:
    domains = [part.strip().lower().lstrip("@") for part in value.split(",") if part.strip()]
    for domain in domains:
        if not _DOMAIN.match(domain):
            raise ValueError(
                f"{variable(name, 'ALLOWED_DOMAINS')} has {domain!r}: use domain names "
                "separated by commas (example.com,example.org)"
            )
    return frozenset(domains)
