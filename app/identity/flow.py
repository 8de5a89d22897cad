"""The configured providers, and a sign-in in flight: state, nonce and PKCE verifier kept in a
short-lived signed cookie, so that a callback belongs to the browser that started it and any
replica can answer it."""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from app.identity.discovery import ProviderUnavailable, new_http_client
from app.identity.github import GitHubUpstream
from app.identity.settings import ProviderConfig
from app.identity.upstream import OidcUpstream, Upstream
from app.kit.security import hash_token, sign_blob, unsign_blob

logger = logging.getLogger("gatehouse.identity")

STATE_COOKIE = "gh_oidc"
LINK_COOKIE = "gh_oidc_link"
FLOW_TTL = 600  # seconds a person has at the provider
LINK_TTL = 600  # seconds to type the password that links an account
_STATE_PURPOSE = "identity-state"
_LINK_PURPOSE = "identity-link"


@dataclass(frozen=True)
class Button:
    name: str
    label: str
    available: bool


class Providers:
    """Every configured provider, by name, sharing one HTTP client with explicit timeouts."""

    def __init__(self, configs: tuple[ProviderConfig, ...], http: httpx.AsyncClient | None = None):
        self.http = http or new_http_client()
        self.upstreams: dict[str, Upstream] = {
            config.name: (
                GitHubUpstream(config, self.http)
                if config.kind == "github"
                else OidcUpstream(config, self.http)
            )
            for config in configs
        }

    def get(self, name: str) -> Upstream | None:
        return self.upstreams.get(name)

    def buttons(self) -> list[Button]:
        return [Button(u.config.name, u.config.label, u.available) for u in self.upstreams.values()]

    async def warm_up(self) -> None:
        """Load each provider's metadata once; one that cannot be reached is a warning only."""
        for upstream in self.upstreams.values():
            if isinstance(upstream, OidcUpstream):
                try:
                    await upstream.discovery.metadata()
                except ProviderUnavailable as exc:
                    logger.warning(
                        "identity provider %s is unavailable (%s); its button says so until "
                        "it answers",
                        upstream.config.name,
                        exc,
                    )

    async def aclose(self) -> None:
        await self.http.aclose()


@dataclass(frozen=True)
class Pending:
    """A sign-in started in this browser and not yet answered."""

    provider: str
    state: str
    nonce: str
    verifier: str
    next_path: str
    connect_user: str | None  # set when a signed-in person asked to connect this provider

    @property
    def challenge(self) -> str:
        # RFC 7636 §4.2: code_challenge = BASE64URL(SHA256(ASCII(code_verifier))).
        digest = hashlib.sha256(self.verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def new_pending(provider: str, next_path: str, connect_user: str | None = None) -> Pending:
    return Pending(
        provider=provider,
        state=secrets.token_urlsafe(32),
        nonce=secrets.token_urlsafe(32),
        verifier=secrets.token_urlsafe(48),  # RFC 7636 §4.1: 43 to 128 characters
        next_path=next_path,
        connect_user=connect_user,
    )


def pending_cookie(key: bytes, pending: Pending) -> str:
    data = {
        "p": pending.provider,
        "s": pending.state,
        "n": pending.nonce,
        "v": pending.verifier,
        "x": pending.next_path,
        "c": pending.connect_user,
    }
    return sign_blob(key, _STATE_PURPOSE, data, ttl=FLOW_TTL)


def read_pending(key: bytes, value: str | None) -> Pending | None:
    data = unsign_blob(key, _STATE_PURPOSE, value or "")
    if data is None:
        return None
    try:
        return Pending(
            provider=str(data["p"]),
            state=str(data["s"]),
            nonce=str(data["n"]),
            verifier=str(data["v"]),
            next_path=str(data["x"]),
            connect_user=str(data["c"]) if data.get("c") else None,
        )
    except KeyError:
        return None


def state_hash(key: bytes, state: str) -> str:
    return hash_token(key, state, purpose=_STATE_PURPOSE)


def link_cookie(key: bytes, data: dict[str, Any]) -> str:
    return sign_blob(key, _LINK_PURPOSE, data, ttl=LINK_TTL)


def read_link(key: bytes, value: str | None) -> dict[str, Any] | None:
    return unsign_blob(key, _LINK_PURPOSE, value or "")
