"""The authorization code grant: approving a request mints a code (RFC 6749 §4.1.2); /token
exchanges it, once, for tokens (RFC 6749 §4.1.3, OAuth 2.1 §4.1.3, RFC 7636 §4.6)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import NoReturn

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.db import rows_affected, utcnow
from app.kit.security import hash_token, new_token
from app.oauth.authorization import AuthorizationRequest
from app.oauth.clients import persist_client
from app.oauth.consent import remember_consent
from app.oauth.errors import InvalidGrant, InvalidRequest, InvalidTarget
from app.oauth.issuance import (
    REFRESH_PREFIX,
    TokenResponse,
    issue_access,
    new_refresh_row,
    touch,
)
from app.oauth.models import AuthorizationCode, OAuthClient, OAuthGrant
from app.oauth.pkce import verifier_matches
from app.oauth.resource_indicators import check_resource
from app.oauth.revocation import revoke_grant
from app.oauth.scopes import format_scopes
from app.oauth.signing_keys import SigningKeys
from app.telemetry import note, reuse_detections

CODE_PREFIX = "gh_ac_"


def _code_hash(secret_key: bytes, code: str) -> str:
    return hash_token(secret_key, code, purpose="code")


async def approve(
    *,
    session: AsyncSession,
    settings: Settings,
    user_id: uuid.UUID,
    authorization: AuthorizationRequest,
    scopes: Sequence[str],
    remember: bool,
    ip: str | None,
) -> str:
    """Create the grant and its authorization code; returns the code (its only plaintext)."""
    client = await persist_client(session, authorization.client)
    grant = OAuthGrant(
        user_id=user_id,
        client_pk=client.id,
        scopes=format_scopes(scopes),
        resource=authorization.resource,
        redirect_uri=authorization.redirect_uri,
    )
    session.add(grant)
    await session.flush()
    code = new_token(CODE_PREFIX)
    session.add(
        AuthorizationCode(
            code_hash=_code_hash(settings.secret_key_bytes, code),
            grant_id=grant.id,
            client_pk=client.id,
            redirect_uri=authorization.redirect_uri,
            redirect_uri_given=authorization.redirect_uri_given,
            code_challenge=authorization.code_challenge,
            scopes=grant.scopes,
            resource=authorization.resource,
            expires_at=utcnow() + timedelta(seconds=settings.auth_code_ttl),
        )
    )
    if remember:
        await remember_consent(
            session,
            user_id=user_id,
            client_pk=client.id,
            redirect_uri=authorization.redirect_uri,
            scopes=scopes,
        )
    audit.record(
        session,
        "grant.approved",
        user_id=user_id,
        ip=ip,
        client_id=client.client_id[:200],
        scopes=grant.scopes,
        grant_id=str(grant.id),
    )
    return code


async def _code_row(
    session: AsyncSession, settings: Settings, client: OAuthClient, code: str, ip: str | None
) -> AuthorizationCode:
    row = (
        await session.execute(
            select(AuthorizationCode).where(
                AuthorizationCode.code_hash == _code_hash(settings.secret_key_bytes, code)
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise InvalidGrant("the authorization code is not valid")
    if row.client_pk != client.id:
        raise InvalidGrant("the authorization code was issued to another client")
    if row.used_at is not None:
        await _code_reused(session, row, ip)
    return row


def _check_code(
    settings: Settings,
    row: AuthorizationCode,
    *,
    redirect_uri: str | None,
    verifier: str,
    resources: Sequence[str],
) -> None:
    # Every check that can fail comes before the code is spent: a request without the PKCE
    # verifier (say, from someone who only saw the code) must not burn the code or the grant.
    if row.expires_at <= utcnow():
        raise InvalidGrant("the authorization code has expired")
    # OAuth 2.1 §4.1.3: redirect_uri is "REQUIRED, if the redirect_uri parameter was included in
    # the authorization request", and must then be identical.
    if redirect_uri is None and row.redirect_uri_given:
        raise InvalidRequest("redirect_uri is required: it was part of the authorization request")
    if redirect_uri is not None and redirect_uri != row.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    if not verifier_matches(verifier, row.code_challenge):
        raise InvalidGrant("PKCE verification failed")
    if resources and check_resource(settings.mcp_resource, resources) != row.resource:
        raise InvalidTarget("the resource does not match the authorization request")


async def _live_grant(session: AsyncSession, grant_id: uuid.UUID) -> OAuthGrant:
    grant = (
        await session.execute(select(OAuthGrant).where(OAuthGrant.id == grant_id))
    ).scalar_one()
    if grant.revoked_at is not None:
        raise InvalidGrant("the grant has been revoked")
    if grant.user.disabled_at is not None:
        raise InvalidGrant("the user's account is disabled")
    return grant


async def exchange_code(
    *,
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    client: OAuthClient,
    code: str | None,
    redirect_uri: str | None,
    verifier: str | None,
    resources: Sequence[str],
    ip: str | None,
) -> TokenResponse:
    if not code:
        raise InvalidRequest("code is required")
    if not verifier:
        # OAuth 2.1 §4.1.3: the code_verifier is required when a challenge was sent (always).
        raise InvalidRequest("code_verifier is required")
    if "authorization_code" not in client.grant_types:
        raise InvalidRequest("this client may not use the authorization_code grant")
    row = await _code_row(session, settings, client, code, ip)
    now = utcnow()
    _check_code(settings, row, redirect_uri=redirect_uri, verifier=verifier, resources=resources)
    grant = await _live_grant(session, row.grant_id)

    # Spend the code atomically: of two concurrent exchanges exactly one updates the row.
    claimed = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    if not rows_affected(claimed):
        await _code_reused(session, row, ip)
    # Refresh tokens go to every client registered for the refresh_token grant, whether or not
    # it asked for offline_access (SEP-2207: the AS decides from the client's grant_types).
    refresh_token = None
    if "refresh_token" in client.grant_types:
        refresh_token = new_token(REFRESH_PREFIX)
        scopes = format_scopes(grant.scope_list)
        session.add(new_refresh_row(settings, grant, client, scopes, refresh_token))
    touch(grant, now)
    touch(client, now)
    response = await issue_access(
        settings=settings,
        keys=keys,
        grant=grant,
        client=client,
        scopes=grant.scope_list,
        refresh_token=refresh_token,
    )
    note(gatehouse__outcome="issued")
    audit.record(
        session,
        "token.issued",
        user_id=grant.user_id,
        ip=ip,
        client_id=client.client_id[:200],
        grant_id=str(grant.id),
    )
    return response


async def _code_reused(session: AsyncSession, row: AuthorizationCode, ip: str | None) -> NoReturn:
    # OAuth 2.1 §4.1.3: "If an authorization code is used more than once, the authorization
    # server MUST deny the request and SHOULD revoke (when possible) all access tokens and
    # refresh tokens previously issued based on that authorization code."
    note(gatehouse__outcome="reuse_revoked")
    reuse_detections.add(1, {"gatehouse.token.kind": "authorization_code"})
    await revoke_grant(session, row.grant_id, reason="code_reuse", ip=ip)
    await session.commit()
    raise InvalidGrant("the authorization code was already used; its grant is revoked")
