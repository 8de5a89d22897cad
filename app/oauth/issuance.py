"""Issuing tokens for a grant: the refresh-token row and the signed access token (RFC 6749 §5.1)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import table_of, utcnow
from app.kit.security import hash_token
from app.oauth.access_tokens import AccessTokenRequest
from app.oauth.models import OAuthClient, OAuthGrant, RefreshToken
from app.oauth.scopes import format_scopes
from app.oauth.signing_keys import SigningKeys

REFRESH_PREFIX = "gh_rt_"
LAST_USED_RESOLUTION = timedelta(minutes=5)


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_in: int
    refresh_token: str | None
    scope: str

    def as_json(self) -> dict[str, Any]:
        # RFC 6749 §5.1; refresh_token is OPTIONAL, sent to clients registered for that grant.
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "scope": self.scope,
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


def refresh_token_hash(secret_key: bytes, token: str) -> str:
    return hash_token(secret_key, token, purpose="refresh")


# Built once: the statement object carries its memoised cache key, so each execution skips both
# building the expression and computing the key (bench/token_bench.py).
_REFRESH_BY_HASH = select(RefreshToken).where(RefreshToken.token_hash == bindparam("token_hash"))


async def find_refresh_token(
    session: AsyncSession, secret_key: bytes, token: str
) -> RefreshToken | None:
    token_hash = refresh_token_hash(secret_key, token)
    result = await session.execute(_REFRESH_BY_HASH, {"token_hash": token_hash})
    return result.scalar_one_or_none()


def refresh_row_values(
    settings: Settings, grant: GrantLike, client: OAuthClient, scopes: str, token: str
) -> dict[str, Any]:
    """The columns of a new refresh token's row; only its hash is stored."""
    return {
        "token_hash": refresh_token_hash(settings.secret_key_bytes, token),
        "grant_id": grant.id,
        "client_pk": client.id,
        "scopes": scopes,
        "expires_at": utcnow() + timedelta(seconds=settings.refresh_token_ttl),
    }


def new_refresh_row(
    settings: Settings, grant: OAuthGrant, client: OAuthClient, scopes: str, token: str
) -> RefreshToken:
    """The row for a new refresh token, to add to the session."""
    return RefreshToken(**refresh_row_values(settings, grant, client, scopes, token))


INSERT_REFRESH = insert(table_of(RefreshToken))


def use_is_news(last_used_at: datetime | None, now: datetime) -> bool:
    """Whether a use at `now` is worth writing down: uses are noted at a coarse resolution, so
    a busy client does not write on every refresh."""
    return last_used_at is None or now - last_used_at > LAST_USED_RESOLUTION


def touch(row: OAuthGrant | OAuthClient, now: datetime) -> None:
    """Note a use (written with the session's next flush)."""
    if use_is_news(row.last_used_at, now):
        row.last_used_at = now


class GrantLike(Protocol):
    """What issuing needs of a grant: a mapped OAuthGrant, or a refresh's GrantState."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def user_id(self) -> uuid.UUID: ...

    @property
    def resource(self) -> str: ...


async def issue_access(
    *,
    settings: Settings,
    keys: SigningKeys,
    grant: GrantLike,
    client: OAuthClient,
    scopes: list[str],
    refresh_token: str | None,
) -> TokenResponse:
    """Sign an access token for the grant and pair it with `refresh_token`."""
    access_token, ttl = await keys.issue(
        AccessTokenRequest(
            issuer=settings.issuer,
            audience=grant.resource,
            subject=str(grant.user_id),
            client_id=client.client_id,
            scopes=scopes,
            grant_id=grant.id,
        )
    )
    return TokenResponse(access_token, ttl, refresh_token, format_scopes(scopes))
