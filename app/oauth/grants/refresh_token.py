"""The refresh token grant (RFC 6749 §6): rotate on every use, replay inside a grace window,
revoke the grant on reuse after it (OAuth 2.1 §4.3.1)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.db import utcnow
from app.kit.envelope import DecryptionError, Envelope, Sealed
from app.kit.security import new_token
from app.oauth.errors import InvalidGrant, InvalidRequest, InvalidScope, InvalidTarget
from app.oauth.grants.presented import GrantState, PresentedToken, find_presented, touch_grant
from app.oauth.grants.rotation import rotate_row
from app.oauth.issuance import (
    REFRESH_PREFIX,
    TokenResponse,
    issue_access,
    refresh_row_values,
    touch,
)
from app.oauth.models import OAuthClient, RefreshToken
from app.oauth.resource_indicators import check_resource
from app.oauth.revocation import revoke_grant
from app.oauth.scopes import format_scopes, parse_scope
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


@dataclass(frozen=True)
class _SealedPair:
    """What a rotation handed out, sealed on the rotated row for the grace window."""

    refresh_token: str
    access_token: str
    access_expires_at: datetime
    scope: str

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "refresh_token": self.refresh_token,
                "access_token": self.access_token,
                "access_expires_at": int(self.access_expires_at.timestamp()),
                "scope": self.scope,
            }
        ).encode()

    @classmethod
    def from_bytes(cls, plain: bytes) -> _SealedPair:
        if not plain.startswith(b"{"):
            # Sealed before pairs were: the refresh token alone; a fresh access token goes with it.
            return cls(plain.decode(), "", datetime.fromtimestamp(0, UTC), "")
        data = json.loads(plain)
        return cls(
            refresh_token=data["refresh_token"],
            access_token=data["access_token"],
            access_expires_at=datetime.fromtimestamp(data["access_expires_at"], UTC),
            scope=data["scope"],
        )


def _successor_context(row: RefreshToken | PresentedToken) -> dict[str, str]:
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
) -> PresentedToken:
    if not request.refresh_token:
        raise InvalidRequest("refresh_token is required")
    if "refresh_token" not in request.client.grant_types:
        raise InvalidRequest("this client may not use the refresh_token grant")
    row = await find_presented(session, settings.secret_key_bytes, request.refresh_token)
    if row is None or row.client_pk != request.client.id:
        raise InvalidGrant("the refresh token is not valid")
    grant = row.grant
    if request.resources and (
        check_resource(settings.mcp_resource, request.resources) != grant.resource
    ):
        raise InvalidTarget("the resource does not match the grant")
    if grant.revoked_at is not None:
        raise InvalidGrant("the grant has been revoked")
    if grant.user_disabled_at is not None:
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
    response = await issue_access(
        settings=settings,
        keys=keys,
        grant=grant,
        client=client,
        scopes=access_scopes,
        refresh_token=new_token(REFRESH_PREFIX),
    )
    if await _rotate(session, settings, envelope, row, request=request, response=response, now=now):
        await touch_grant(session, grant, now)
        touch(client, now)
        _count_outcome("rotated")
        return response

    # Another request rotated it first. A retry inside the grace window gets the pair the first
    # request got (the live head of the chain), so concurrent refreshers converge on one chain;
    # anything else is reuse.
    replay = await _live_head(session, envelope, settings, row, now)
    if replay is not None:
        await _refresh_outcome(session, "grace_replay", "token.refresh_replayed", grant, request)
        return await _replayed(
            settings,
            keys,
            grant=grant,
            client=client,
            pair=replay,
            access_scopes=access_scopes,
            now=now,
        )
    reuse_detections.add(1, {"gatehouse.token.kind": "refresh_token"})
    await revoke_grant(
        session, grant.id, reason="refresh_reuse", ip=request.ip, user_id=grant.user_id
    )
    await _refresh_outcome(session, "reuse_revoked", "token.reuse_detected", grant, request)
    await session.commit()
    raise InvalidGrant("the refresh token was already used; its grant is revoked")


async def _replayed(
    settings: Settings,
    keys: SigningKeys,
    *,
    grant: GrantState,
    client: OAuthClient,
    pair: _SealedPair,
    access_scopes: list[str],
    now: datetime,
) -> TokenResponse:
    """The same pair again; a fresh access token only when the first is (nearly) expired or the
    retry narrowed the scope differently."""
    remaining = int((pair.access_expires_at - now).total_seconds())
    if pair.access_token and pair.scope == format_scopes(access_scopes) and remaining > 10:
        return TokenResponse(pair.access_token, remaining, pair.refresh_token, pair.scope)
    return await issue_access(
        settings=settings,
        keys=keys,
        grant=grant,
        client=client,
        scopes=access_scopes,
        refresh_token=pair.refresh_token,
    )


async def _rotate(
    session: AsyncSession,
    settings: Settings,
    envelope: Envelope,
    row: PresentedToken,
    *,
    request: RefreshRequest,
    response: TokenResponse,
    now: datetime,
) -> bool:
    """Replace `row` by the response's refresh token, atomically, with its audit event; False,
    and nothing written, if another request rotated it first.

    The successor pair is kept sealed (AES-GCM envelope, bound to this row and grant) on the old
    row for the grace window only — the purge wipes it after — so a retry can be given the same
    pair; only the successor's hash is stored in the clear.
    """
    assert response.refresh_token is not None  # noqa: S101 - refresh always issues one
    pair = _SealedPair(
        refresh_token=response.refresh_token,
        access_token=response.access_token,
        access_expires_at=now + timedelta(seconds=response.expires_in),
        scope=response.scope,
    )
    sealed = await envelope.seal(pair.to_bytes(), context=_successor_context(row))
    successor = refresh_row_values(
        settings, row.grant, request.client, row.scopes, pair.refresh_token
    )
    return await rotate_row(
        session,
        row_id=row.id,
        now=now,
        sealed=sealed.to_bytes(),
        successor={**successor, "id": uuid.uuid4()},
        event=_event("token.refreshed", row.grant, request),
    )


def _event(kind: str, grant: GrantState, request: RefreshRequest) -> dict[str, Any]:
    """The audit event of a refresh's outcome, as `_refresh_outcome` writes it."""
    return audit.event_values(
        kind,
        user_id=grant.user_id,
        ip=request.ip,
        client_id=request.client.client_id[:200],
        grant_id=str(grant.id),
    )


def _count_outcome(outcome: str) -> None:
    """Record how a refresh ended on its span and in the refresh counter."""
    note(gatehouse__outcome=outcome)
    refreshes.add(1, {"gatehouse.outcome": outcome})


async def _refresh_outcome(
    session: AsyncSession,
    outcome: str,
    audit_kind: str,
    grant: GrantState,
    request: RefreshRequest,
) -> None:
    """`_count_outcome`, and the audit event (a rotation writes its own, with the rotation)."""
    _count_outcome(outcome)
    await audit.insert_event(session, _event(audit_kind, grant, request))


async def _live_head(
    session: AsyncSession,
    envelope: Envelope,
    settings: Settings,
    row: PresentedToken,
    now: datetime,
) -> _SealedPair | None:
    """Follow the chain from `row` while every rotation is inside the grace window."""
    grace = timedelta(seconds=settings.refresh_reuse_grace)
    current = await session.get(RefreshToken, row.id)  # as the rotation that won left it
    for _ in range(MAX_GRACE_CHAIN):
        if current is None:
            return None
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
                plain = await envelope.open(sealed, context=_successor_context(current))
            except DecryptionError:
                return None
            return _SealedPair.from_bytes(plain)
        current = successor
    return None
