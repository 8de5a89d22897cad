"""The refresh token grant (RFC 6749 §6): rotate on every use, replay inside a grace window,
revoke the grant on reuse after it (OAuth 2.1 §4.3.1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.db import rows_affected, utcnow
from app.kit.envelope import DecryptionError, Envelope, Sealed
from app.kit.security import new_token
from app.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget
from app.oauth.issuance import (
    REFRESH_PREFIX,
    TokenResponse,
    find_refresh_token,
    issue_access,
    new_refresh_row,
    touch,
)
from app.oauth.models import OAuthClient, OAuthGrant, RefreshToken
from app.oauth.resource_indicators import check_resource
from app.oauth.revocation import revoke_grant
from app.oauth.scopes import parse_scope
from app.oauth.signing_keys import SigningKeys
from app.telemetry import note, refreshes, reuse_detections

MAX_GRACE_CHAIN = 16  # a chain rotated 16 times within the grace window is an attack


@dataclass(frozen=True)
class RefreshRequest:
    """A refresh by an authenticated client (RFC 6749 §6)."""

    client: OAuthClient
    refresh_token: str | None
    scope: str | None
    resources: Sequence[str]
    ip: str | None


def _successor_context(row: RefreshToken) -> dict[str, str]:
    return {"purpose": "refresh-successor", "token": str(row.id), "grant": str(row.grant_id)}


def _narrowed(granted: list[str], requested: str | None) -> list[str]:
    if not requested:
        return granted
    wanted = parse_scope(requested)
    if not set(wanted) <= set(granted):
        raise InvalidScope("the requested scope exceeds what was granted")
    return wanted


async def _usable_row(
    session: AsyncSession, settings: Settings, request: RefreshRequest
) -> RefreshToken:
    if not request.refresh_token:
        raise InvalidRequest("refresh_token is required")
    if "refresh_token" not in request.client.grant_types:
        raise InvalidRequest("this client may not use the refresh_token grant")
    row = await find_refresh_token(session, settings.secret_key_bytes, request.refresh_token)
    if row is None or row.client_pk != request.client.id:
        raise InvalidGrant("the refresh token is not valid")
    grant = row.grant
    if request.resources and (
        check_resource(settings.mcp_resource, request.resources) != grant.resource
    ):
        raise InvalidTarget("the resource does not match the grant")
    if grant.revoked_at is not None:
        raise InvalidGrant("the grant has been revoked")
    if grant.user.disabled_at is not None:
        raise InvalidGrant("the user's account is disabled")
    if row.expires_at <= utcnow():
        raise InvalidGrant("the refresh token has expired")
    return row


async def refresh(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    envelope: Envelope,
    request: RefreshRequest,
) -> TokenResponse:
    row = await _usable_row(session, settings, request)
    grant, client = row.grant, request.client
    now = utcnow()
    # RFC 6749 §6: a narrower scope applies to the new access token; the refresh token keeps
    # the grant's scope ("MUST be identical to that of the refresh token included by the client").
    access_scopes = _narrowed(row.scopes.split(), request.scope)
    successor = await _rotate(session, settings, envelope, row, client, now=now)
    if successor is not None:
        response = await issue_access(
            settings=settings,
            keys=keys,
            grant=grant,
            client=client,
            scopes=access_scopes,
            refresh_token=successor,
        )
        touch(grant, now)
        touch(client, now)
        _refresh_outcome(session, "rotated", "token.refreshed", grant, request)
        return response

    # Another request rotated it first. A retry inside the grace window gets the live head of
    # the chain, so concurrent refreshers converge on one valid chain; anything else is reuse.
    head = await _live_head(session, envelope, settings, row, now)
    if head is not None:
        head_row, head_token = head
        response = await issue_access(
            settings=settings,
            keys=keys,
            grant=grant,
            client=client,
            scopes=_narrowed(head_row.scopes.split(), request.scope),
            refresh_token=head_token,
        )
        _refresh_outcome(session, "grace_replay", "token.refresh_replayed", grant, request)
        return response
    reuse_detections.add(1, {"gatehouse.token.kind": "refresh_token"})
    await revoke_grant(
        session, grant.id, reason="refresh_reuse", ip=request.ip, user_id=grant.user_id
    )
    _refresh_outcome(session, "reuse_revoked", "token.reuse_detected", grant, request)
    await session.commit()
    raise InvalidGrant("the refresh token was already used; its grant is revoked")


async def _rotate(
    session: AsyncSession,
    settings: Settings,
    envelope: Envelope,
    row: RefreshToken,
    client: OAuthClient,
    *,
    now: datetime,
) -> str | None:
    """Replace `row` by a successor, atomically; None if another request rotated it first.

    The successor's plaintext is kept sealed on the old row for the grace window, so a retry can
    be given the same new token.
    """
    successor = new_token(REFRESH_PREFIX)
    sealed = await envelope.seal(successor.encode(), context=_successor_context(row))
    successor_row = new_refresh_row(settings, row.grant, client, row.scopes, successor)
    session.add(successor_row)
    await session.flush()
    rotated = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now, successor_id=successor_row.id, successor_sealed=sealed.to_bytes())
    )
    if rows_affected(rotated):
        return successor
    await session.delete(successor_row)
    return None


def _refresh_outcome(
    session: AsyncSession,
    outcome: str,
    audit_kind: str,
    grant: OAuthGrant,
    request: RefreshRequest,
) -> None:
    """Record how a refresh ended: on its span, in the refresh counter and the audit log."""
    note(gatehouse__outcome=outcome)
    refreshes.add(1, {"gatehouse.outcome": outcome})
    audit.record(
        session,
        audit_kind,
        user_id=grant.user_id,
        ip=request.ip,
        client_id=request.client.client_id[:200],
        grant_id=str(grant.id),
    )


async def _live_head(
    session: AsyncSession, envelope: Envelope, settings: Settings, row: RefreshToken, now: datetime
) -> tuple[RefreshToken, str] | None:
    """Follow the chain from `row` while every rotation is inside the grace window."""
    grace = timedelta(seconds=settings.refresh_reuse_grace)
    current = row
    await session.refresh(current)
    for _ in range(MAX_GRACE_CHAIN):
        if (
            current.rotated_at is None
            or now - current.rotated_at > grace
            or current.successor_id is None
            or current.successor_sealed is None
        ):
            return None
        successor = await session.get(RefreshToken, current.successor_id)
        if successor is None:
            return None
        if successor.rotated_at is None:
            try:
                sealed = Sealed.from_bytes(current.successor_sealed)
                token = await envelope.open(sealed, context=_successor_context(current))
            except DecryptionError:
                return None
            return successor, token.decode()
        current = successor
    return None
