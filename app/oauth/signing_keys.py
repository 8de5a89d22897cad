"""The keys that sign access tokens: kept in the database with their private halves sealed.

Every process caches the active key and the published key set briefly, so signing and verifying
read nothing per request.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import audit
from app.db import utcnow
from app.kit.envelope import DecryptionError, Envelope, Sealed
from app.oauth.access_tokens import (
    ALGORITHM,
    LEEWAY_SECONDS,
    AccessTokenClaims,
    AccessTokenRequest,
    UnknownKeyId,
    mint,
    verify_access_token,
)
from app.oauth.models import SigningKey

KEY_CACHE_SECONDS = 30
RELOAD_INTERVAL = 5.0


class SigningKeyLocked(DecryptionError):
    """The active signing key does not open with the configured vault keys.

    `sealed_kid` names the vault key that sealed it (a row's header, not a secret)."""

    def __init__(self, kid: str, sealed_kid: str) -> None:
        super().__init__(f"the signing key {kid} does not open with the vault keys")
        self.kid = kid
        self.sealed_kid = sealed_kid


def _context(kid: str) -> dict[str, str]:
    return {"purpose": "signing-key", "kid": kid}


def publish_window(access_token_ttl: int) -> timedelta:
    """How long a retired key stays published: every token it signed has expired by then.

    Other processes may sign with a key for up to KEY_CACHE_SECONDS after it is retired.
    """
    return timedelta(seconds=access_token_ttl + KEY_CACHE_SECONDS + LEEWAY_SECONDS)


def _sealed(row: SigningKey) -> Sealed:
    return Sealed(
        kid=row.sealed_kid,
        wrapped_key=row.sealed_key,
        nonce=row.sealed_nonce,
        ciphertext=row.sealed_private,
        version=row.sealed_version,
    )


class SigningKeys:
    """The active signing key and the published key set, cached per process."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        envelope: Envelope,
        *,
        access_token_ttl: int,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._envelope = envelope
        self._ttl = access_token_ttl
        self._active: tuple[float, str, ECKey] | None = None
        self._published: tuple[float, KeySet, list[dict[str, Any]]] | None = None
        self._forced_at = float("-inf")

    def publish_window(self) -> timedelta:
        return publish_window(self._ttl)

    async def active(self) -> tuple[str, ECKey]:
        now = time.monotonic()
        if self._active and now - self._active[0] < KEY_CACHE_SECONDS:
            return self._active[1], self._active[2]
        try:
            async with self._sessionmaker.begin() as session:
                row = await _newest_active(session)
                if row is None:
                    row = await create_signing_key(session, self._envelope)
        except (SQLAlchemyError, OSError):
            if self._active is None:
                raise
            return self._active[1], self._active[2]  # database away: keep the known key
        try:
            pem = await self._envelope.open(_sealed(row), context=_context(row.kid))
        except DecryptionError:
            raise SigningKeyLocked(row.kid, row.sealed_kid) from None
        key = ECKey.import_key(pem, {"kid": row.kid, "alg": ALGORITHM, "use": "sig"})
        self._active = (now, row.kid, key)
        return row.kid, key

    async def published(self, *, refresh: bool = False) -> tuple[KeySet, list[dict[str, Any]]]:
        now = time.monotonic()
        if not refresh and self._published and now - self._published[0] < KEY_CACHE_SECONDS:
            return self._published[1], self._published[2]
        try:
            async with self._sessionmaker() as session:
                rows = await published_keys(session, self.publish_window())
        except (SQLAlchemyError, OSError):
            # The database is away: the keys we know keep verifying (none can have been
            # withdrawn without it). Not for an unknown kid (refresh): that is a 503.
            if self._published is None or refresh:
                raise
            return self._published[1], self._published[2]
        jwks = [dict(row.public_jwk) for row in rows]
        keyset = KeySet([ECKey.import_key(jwk) for jwk in jwks])
        self._published = (now, keyset, jwks)
        return keyset, jwks

    def forget(self) -> None:
        self._active = None
        self._published = None

    async def issue(self, request: AccessTokenRequest) -> tuple[str, int]:
        """A signed access token and its lifetime in seconds."""
        kid, key = await self.active()
        return mint(request, kid=kid, key=key, ttl=self._ttl), self._ttl

    async def verify(self, token: str, *, issuer: str, audience: str) -> AccessTokenClaims:
        """Verify an access token locally: signature, alg, typ, iss, aud, exp/nbf."""
        keyset, _ = await self.published()
        try:
            return verify_access_token(token, keyset, issuer=issuer, audience=audience)
        except UnknownKeyId:
            # A key made by another process since our last look: reload, but at most once per
            # RELOAD_INTERVAL, so tokens with made-up kids cannot make us query on every request.
            now = time.monotonic()
            if now - self._forced_at < RELOAD_INTERVAL:
                raise
            self._forced_at = now
            keyset, _ = await self.published(refresh=True)
            return verify_access_token(token, keyset, issuer=issuer, audience=audience)


async def _newest_active(session: AsyncSession) -> SigningKey | None:
    stmt = (
        select(SigningKey)
        .where(SigningKey.retired_at.is_(None))
        .order_by(SigningKey.created_at.desc())
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def published_keys(session: AsyncSession, window: timedelta) -> list[SigningKey]:
    cutoff = utcnow() - window
    stmt = (
        select(SigningKey)
        .where(or_(SigningKey.retired_at.is_(None), SigningKey.retired_at > cutoff))
        .order_by(SigningKey.created_at.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def create_signing_key(session: AsyncSession, envelope: Envelope) -> SigningKey:
    kid = f"gh-{utcnow():%Y%m%d}-{uuid.uuid4().hex[:8]}"
    key = ECKey.generate_key(
        "P-256", parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"}, private=True
    )
    sealed = await envelope.seal(key.as_pem(private=True), context=_context(kid))
    row = SigningKey(
        kid=kid,
        alg=ALGORITHM,
        public_jwk=key.as_dict(private=False),
        sealed_kid=sealed.kid,
        sealed_key=sealed.wrapped_key,
        sealed_nonce=sealed.nonce,
        sealed_private=sealed.ciphertext,
        sealed_version=sealed.version,
    )
    session.add(row)
    await session.flush()
    audit.record(session, "signing_key.created", kid=kid)
    return row


async def rewrap_signing_keys(session: AsyncSession, envelope: Envelope) -> int:
    """Re-wrap the signing keys' data keys under the active vault master key (`vault rekey`).

    Without this, removing an old VAULT_KEYS entry would leave the signing keys unreadable.
    """
    rows = (
        await session.execute(
            select(SigningKey).where(SigningKey.sealed_kid != envelope.provider.active_kid)
        )
    ).scalars()
    count = 0
    for row in rows:
        new = await envelope.rewrap(_sealed(row), context=_context(row.kid))
        row.sealed_kid, row.sealed_key = new.kid, new.wrapped_key
        count += 1
    return count


async def rotate_signing_key(
    session: AsyncSession, envelope: Envelope
) -> tuple[SigningKey, list[str]]:
    """Add a new active key and retire the others; they stay published until their tokens expire."""
    now = utcnow()
    old = list(
        (await session.execute(select(SigningKey).where(SigningKey.retired_at.is_(None)))).scalars()
    )
    new = await create_signing_key(session, envelope)
    for row in old:
        row.retired_at = now
    audit.record(session, "signing_key.rotated", kid=new.kid, retired=",".join(r.kid for r in old))
    return new, [row.kid for row in old]
