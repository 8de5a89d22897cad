"""The refresh grant's read: a presented refresh token with what its checks need of its grant
and its user, in one Core SELECT.

Every refresh runs it. Loaded through the ORM (the token, its joined grant and the grant's
joined user) it cost three mapped objects' construction and identity-map bookkeeping, more than
the query itself; the grant needs only a few of its columns, the user one. The rotation writes
are statements too (refresh_token.py), so nothing here needs to be a mapped object.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.db import table_of
from app.oauth.issuance import refresh_token_hash, use_is_news
from app.oauth.models import OAuthGrant, RefreshToken


@dataclass(frozen=True)
class GrantState:
    """What a refresh needs of the token's grant and of its user."""

    id: uuid.UUID
    user_id: uuid.UUID
    resource: str
    revoked_at: datetime | None
    last_used_at: datetime | None
    user_disabled_at: datetime | None


@dataclass(frozen=True)
class PresentedToken:
    """A refresh token's row as presented, before any check."""

    id: uuid.UUID
    grant_id: uuid.UUID
    client_pk: uuid.UUID
    scopes: str
    expires_at: datetime
    grant: GrantState


_TOKENS, _GRANTS, _USERS = table_of(RefreshToken), table_of(OAuthGrant), table_of(User)
# Built once (app/oauth/issuance.py's _REFRESH_BY_HASH).
_PRESENTED = (
    select(
        _TOKENS.c.id,
        _TOKENS.c.grant_id,
        _TOKENS.c.client_pk,
        _TOKENS.c.scopes,
        _TOKENS.c.expires_at,
        _GRANTS.c.user_id,
        _GRANTS.c.resource,
        _GRANTS.c.revoked_at,
        _GRANTS.c.last_used_at,
        _USERS.c.disabled_at,
    )
    .join(_GRANTS, _GRANTS.c.id == _TOKENS.c.grant_id)
    .join(_USERS, _USERS.c.id == _GRANTS.c.user_id)
    .where(_TOKENS.c.token_hash == bindparam("token_hash"))
)
_TOUCH_GRANT = (
    update(_GRANTS)
    .where(_GRANTS.c.id == bindparam("grant_id"))
    .values(last_used_at=bindparam("at"))
)


async def find_presented(
    session: AsyncSession, secret_key: bytes, token: str
) -> PresentedToken | None:
    token_hash = refresh_token_hash(secret_key, token)
    found = (await session.execute(_PRESENTED, {"token_hash": token_hash})).one_or_none()
    if found is None:
        return None
    (token_id, grant_id, client_pk, scopes, expires_at, user_id, resource, revoked_at,
     last_used_at, disabled_at) = found  # fmt: skip
    grant = GrantState(grant_id, user_id, resource, revoked_at, last_used_at, disabled_at)
    return PresentedToken(token_id, grant_id, client_pk, scopes, expires_at, grant)


async def touch_grant(session: AsyncSession, grant: GrantState, now: datetime) -> None:
    """`issuance.touch` for a grant read here: one UPDATE, when the last use is old news."""
    if use_is_news(grant.last_used_at, now):
        await session.execute(_TOUCH_GRANT, {"grant_id": grant.id, "at": now})
