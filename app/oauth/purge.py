"""The authorization server's own rows that can never be used again (see app/housekeeping.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Delete, Update, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import rows_affected, utcnow
from app.oauth.models import (
    AuthorizationCode,
    ClientAssertion,
    OAuthClient,
    OAuthGrant,
    RefreshToken,
    SigningKey,
)
from app.oauth.registration import RESOURCE_SERVER_KIND

DAY = timedelta(days=1)
REVOKED_GRANT_RETENTION = timedelta(days=30)


def _statements(settings: Settings, key_window: timedelta) -> list[tuple[str, Delete | Update]]:
    now = utcnow()
    has_grant = select(OAuthGrant.id).where(OAuthGrant.client_pk == OAuthClient.id).exists()
    return [
        ("codes", delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - DAY)),
        ("refresh_tokens", delete(RefreshToken).where(RefreshToken.expires_at < now - DAY)),
        (
            "grants",
            delete(OAuthGrant).where(OAuthGrant.revoked_at < now - REVOKED_GRANT_RETENTION),
        ),
        (
            "stale_clients",
            delete(OAuthClient).where(
                OAuthClient.last_used_at.is_(None),
                # An administrator's credential, used only by introspection, never "used" by a
                # grant.
                OAuthClient.kind != RESOURCE_SERVER_KIND,
                OAuthClient.created_at < now - timedelta(seconds=settings.registration_unused_ttl),
                ~has_grant,
            ),
        ),
        # A rotated token's sealed successor is only needed inside the grace window.
        (
            "sealed_successors",
            update(RefreshToken)
            .where(
                RefreshToken.successor_sealed.is_not(None),
                RefreshToken.rotated_at
                < now - timedelta(seconds=settings.refresh_reuse_grace + 60),
            )
            .values(successor_sealed=None),
        ),
        # A spent jti only matters while its assertion could still be presented.
        ("client_assertions", delete(ClientAssertion).where(ClientAssertion.expires_at < now)),
        ("signing_keys", delete(SigningKey).where(SigningKey.retired_at < now - key_window - DAY)),
    ]


async def purge_oauth(
    session: AsyncSession, *, settings: Settings, key_window: timedelta
) -> dict[str, int]:
    """Delete expired codes and tokens, old revoked grants, stale registrations and old keys."""
    counts: dict[str, int] = {}
    for name, stmt in _statements(settings, key_window):
        counts[name] = rows_affected(await session.execute(stmt))
    return counts
