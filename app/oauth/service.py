"""The authorization server's work: clients, authorization, codes, tokens, refresh, revocation."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

from sqlalchemy import delete, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.models import BrowserSession
from app.config import Settings
from app.db import utcnow
from app.kit.envelope import DecryptionError, Envelope, Sealed
from app.kit.security import constant_time_equals, hash_token, new_token
from app.oauth.cimd import CimdError, CimdFetcher, ClientMetadataDocument, is_cimd_client_id
from app.oauth.errors import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    InvalidTarget,
)
from app.oauth.models import (
    AuthorizationCode,
    OAuthClient,
    OAuthConsent,
    OAuthGrant,
    RefreshToken,
    SigningKey,
)
from app.oauth.pkce import verifier_matches
from app.oauth.redirect_uris import loopback_without_port, redirect_uri_problem
from app.oauth.registration import RESOURCE_SERVER_KIND, clean_display_name, hash_client_secret
from app.oauth.scopes import format_scopes, parse_scope
from app.oauth.tokens import InvalidAccessToken, SigningKeys
from app.telemetry import failed, flow_span, note, outcome, refreshes, reuse_detections

CODE_PREFIX = "gh_ac_"
REFRESH_PREFIX = "gh_rt_"
LAST_USED_RESOLUTION = timedelta(minutes=5)


class ClientProblem(Exception):
    """The client_id or redirect_uri cannot be trusted: show a page, never redirect."""


@dataclass(frozen=True)
class TokenResponse:
    access_token: str
    expires_in: int
    refresh_token: str
    scope: str

    def as_json(self) -> dict[str, Any]:
        # RFC 6749 §5.1
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "refresh_token": self.refresh_token,
            "scope": self.scope,
        }


# -- clients ------------------------------------------------------------------------------------


async def find_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    stmt = select(OAuthClient).where(OAuthClient.client_id == client_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _cimd_client(session: AsyncSession, document: ClientMetadataDocument) -> OAuthClient:
    """The client a metadata document describes: its row refreshed, or a new unsaved one.

    A new CIMD client is only written when a person approves it (see approve), so fetching
    documents through /authorize cannot fill the database.
    """
    # The same redirect URI policy as registration: a document cannot smuggle in a scheme or a
    # non-loopback http URI that /register would refuse.
    for uri in document.redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise ClientProblem(f"The client's metadata document is not acceptable: {problem}.")
    client = await find_client(session, document.client_id)
    if client is None:
        client = OAuthClient(
            id=uuid.uuid4(),
            client_id=document.client_id,
            kind="cimd",
            token_endpoint_auth_method="none",  # noqa: S106 - an auth method, not a password
        )
    client.client_name = clean_display_name(document.client_name)
    client.redirect_uris = list(document.redirect_uris)
    client.grant_types = list(document.grant_types)
    client.response_types = list(document.response_types)
    client.scope = document.scope
    client.client_metadata = {
        "client_name": document.client_name,
        "redirect_uris": list(document.redirect_uris),
        "client_uri": document.client_uri,
        "logo_uri": document.logo_uri,
    }
    return client


async def _persist_client(session: AsyncSession, client: OAuthClient) -> OAuthClient:
    if inspect(client).persistent:
        return client
    try:
        async with session.begin_nested():
            session.add(client)
    except IntegrityError:  # approved concurrently elsewhere: use the row that won
        found = await find_client(session, client.client_id)
        if found is None:
            raise
        return found
    return client


async def resolve_client(
    session: AsyncSession, fetcher: CimdFetcher, client_id: str | None
) -> OAuthClient:
    """The client named by client_id: registered, or fetched from its metadata document URL."""
    if not client_id:
        raise ClientProblem("The request has no client_id.")
    if len(client_id) > 2048:
        raise ClientProblem("The client_id is too long.")
    if is_cimd_client_id(client_id):
        with flow_span("oauth.cimd.fetch", oauth__client_id=client_id) as span:
            try:
                document = await fetcher.fetch(client_id)
            except CimdError as exc:
                failed(span, "cimd_error", str(exc))
                raise ClientProblem(
                    f"The client's metadata document could not be used: {exc}"
                ) from exc
            outcome(span, "ok")
        client = await _cimd_client(session, document)
    else:
        found = await find_client(session, client_id)
        if found is None:
            raise ClientProblem(
                "This client is not registered here (or its registration expired). "
                "Ask the app to connect again."
            )
        client = found
    if client.revoked_at is not None:
        raise ClientProblem("This client has been blocked by an administrator.")
    return client


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient("the Basic credentials are malformed") from exc
    if ":" not in decoded:
        raise InvalidClient("the Basic credentials are malformed")
    client_id, secret = decoded.split(":", 1)
    # RFC 6749 §2.3.1: the client identifier and password are form-urlencoded before encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


async def authenticate_client(
    session: AsyncSession,
    settings: Settings,
    fetcher: CimdFetcher,
    *,
    authorization: str | None,
    form_client_id: str | None,
    form_client_secret: str | None,
) -> OAuthClient:
    """RFC 6749 §2.3: authenticate the client by the method it registered."""
    basic = _basic_credentials(authorization)
    if basic and (form_client_secret or (form_client_id and form_client_id != basic[0])):
        # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
        # request."
        raise InvalidRequest("use exactly one client authentication method")
    client_id: str | None
    secret: str | None
    if basic:
        method, (client_id, secret) = "client_secret_basic", basic
    elif form_client_secret:
        method, client_id, secret = "client_secret_post", form_client_id, form_client_secret
    else:
        method, client_id, secret = "none", form_client_id, None
    if not client_id:
        raise InvalidClient("client authentication is required (send client_id)")
    try:
        client = await resolve_client(session, fetcher, client_id)
    except ClientProblem as exc:
        raise InvalidClient(str(exc)) from exc
    if client.token_endpoint_auth_method != method:
        raise InvalidClient(
            f"this client must authenticate with {client.token_endpoint_auth_method}"
        )
    if method != "none":
        expected = client.client_secret_hash or ""
        if secret is None or not constant_time_equals(
            hash_client_secret(settings.secret_key_bytes, secret), expected
        ):
            raise InvalidClient("client authentication failed")
    return client


# -- authorization --------------------------------------------------------------------------------


def check_resource(settings: Settings, resources: list[str]) -> str:
    """RFC 8707 §2: the resource must be our MCP endpoint; absent means it."""
    if not resources:
        return settings.mcp_resource
    if len(resources) > 1:
        raise InvalidTarget("only one resource may be requested")
    resource = resources[0]
    if resource.rstrip("/") != settings.mcp_resource:
        raise InvalidTarget(f"unknown resource; this server's resource is {settings.mcp_resource}")
    return settings.mcp_resource


def check_client_scope(client: OAuthClient, scopes: list[str]) -> None:
    if client.scope:
        allowed = set(client.scope.split())
        extra = [s for s in scopes if s not in allowed]
        if extra:
            raise InvalidScope(f"this client was registered without the scope {' '.join(extra)}")


def consent_key(redirect_uri: str) -> str:
    """The redirect URI as consent remembers it: a loopback URI without its port.

    Native clients pick a new ephemeral port for each connection (RFC 8252 §7.3); the person
    approved the app on their device, not one port of it.
    """
    return loopback_without_port(redirect_uri)


async def consent_covers(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    client: OAuthClient,
    redirect_uri: str,
    scopes: list[str],
) -> bool:
    stmt = select(OAuthConsent).where(
        OAuthConsent.user_id == user_id,
        OAuthConsent.client_pk == client.id,
        OAuthConsent.redirect_uri == consent_key(redirect_uri),
    )
    consent = (await session.execute(stmt)).scalar_one_or_none()
    return consent is not None and set(scopes) <= set(consent.scopes.split())


async def _remember_consent(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    client: OAuthClient,
    redirect_uri: str,
    scopes: list[str],
) -> None:
    stmt = select(OAuthConsent).where(
        OAuthConsent.user_id == user_id,
        OAuthConsent.client_pk == client.id,
        OAuthConsent.redirect_uri == consent_key(redirect_uri),
    )
    consent = (await session.execute(stmt)).scalar_one_or_none()
    if consent is None:
        session.add(
            OAuthConsent(
                user_id=user_id,
                client_pk=client.id,
                redirect_uri=consent_key(redirect_uri),
                scopes=format_scopes(scopes),
            )
        )
    else:
        consent.scopes = format_scopes(scopes)


async def approve(
    session: AsyncSession,
    settings: Settings,
    *,
    browser: BrowserSession,
    client: OAuthClient,
    redirect_uri: str,
    scopes: list[str],
    resource: str,
    code_challenge: str,
    remember: bool,
    ip: str | None,
    redirect_uri_given: bool = True,
) -> str:
    """Create the grant and its authorization code; returns the code (its only plaintext)."""
    client = await _persist_client(session, client)
    grant = OAuthGrant(
        user_id=browser.user_id,
        client_pk=client.id,
        scopes=format_scopes(scopes),
        resource=resource,
        redirect_uri=redirect_uri,
    )
    session.add(grant)
    await session.flush()
    code = new_token(CODE_PREFIX)
    session.add(
        AuthorizationCode(
            code_hash=hash_token(settings.secret_key_bytes, code, purpose="code"),
            grant_id=grant.id,
            client_pk=client.id,
            redirect_uri=redirect_uri,
            redirect_uri_given=redirect_uri_given,
            code_challenge=code_challenge,
            scopes=grant.scopes,
            resource=resource,
            expires_at=utcnow() + timedelta(seconds=settings.auth_code_ttl),
        )
    )
    if remember:
        await _remember_consent(
            session,
            user_id=browser.user_id,
            client=client,
            redirect_uri=redirect_uri,
            scopes=scopes,
        )
    audit.record(
        session,
        "grant.approved",
        user_id=browser.user_id,
        ip=ip,
        client_id=client.client_id[:200],
        scopes=grant.scopes,
        grant_id=str(grant.id),
    )
    return code


# -- tokens ----------------------------------------------------------------------------------------


async def revoke_grant(
    session: AsyncSession,
    grant_id: uuid.UUID,
    *,
    reason: str,
    ip: str | None = None,
    user_id: uuid.UUID | None = None,
) -> bool:
    result = await session.execute(
        update(OAuthGrant)
        .where(OAuthGrant.id == grant_id, OAuthGrant.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    changed = bool(result.rowcount)  # type: ignore[attr-defined]
    if changed:
        audit.record(
            session, "grant.revoked", user_id=user_id, ip=ip, grant_id=str(grant_id), reason=reason
        )
    return changed


async def _issue(
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    *,
    grant: OAuthGrant,
    client: OAuthClient,
    scopes: list[str],
    access_scopes: list[str],
    refresh_token: str,
) -> TokenResponse:
    now = utcnow()
    session.add(_refresh_row_for(settings, grant, client, format_scopes(scopes), refresh_token))
    _touch(grant, now)
    _touch(client, now)
    return await _issue_access(
        settings,
        keys,
        grant=grant,
        client=client,
        scopes=access_scopes,
        refresh_token=refresh_token,
    )


async def _issue_access(
    settings: Settings,
    keys: SigningKeys,
    *,
    grant: OAuthGrant,
    client: OAuthClient,
    scopes: list[str],
    refresh_token: str,
) -> TokenResponse:
    access_token, ttl = await keys.issue(
        issuer=settings.issuer,
        audience=grant.resource,
        subject=str(grant.user_id),
        client_id=client.client_id,
        scopes=scopes,
        grant_id=grant.id,
    )
    return TokenResponse(access_token, ttl, refresh_token, format_scopes(scopes))


def _touch(row: OAuthGrant | OAuthClient, now: datetime) -> None:
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        row.last_used_at = now


async def exchange_code(
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    *,
    client: OAuthClient,
    code: str | None,
    redirect_uri: str | None,
    verifier: str | None,
    resources: list[str],
    ip: str | None,
) -> TokenResponse:
    if not code:
        raise InvalidRequest("code is required")
    if not verifier:
        # OAuth 2.1 §4.1.3: the code_verifier is required when a challenge was sent (always).
        raise InvalidRequest("code_verifier is required")
    if "authorization_code" not in client.grant_types:
        raise InvalidRequest("this client may not use the authorization_code grant")
    code_hash = hash_token(settings.secret_key_bytes, code, purpose="code")
    row = (
        await session.execute(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
        )
    ).scalar_one_or_none()
    if row is None:
        raise InvalidGrant("the authorization code is not valid")
    if row.client_pk != client.id:
        raise InvalidGrant("the authorization code was issued to another client")
    if row.used_at is not None:
        await _code_reused(session, row, ip)

    # Every check that can fail comes before the code is spent: a request without the PKCE
    # verifier (say, from someone who only saw the code) must not burn the code or the grant.
    now = utcnow()
    if row.expires_at <= now:
        raise InvalidGrant("the authorization code has expired")
    # OAuth 2.1 §4.1.3: redirect_uri is "REQUIRED, if the redirect_uri parameter was included in
    # the authorization request", and must then be identical.
    if redirect_uri is None and row.redirect_uri_given:
        raise InvalidRequest("redirect_uri is required: it was part of the authorization request")
    if redirect_uri is not None and redirect_uri != row.redirect_uri:
        raise InvalidGrant("redirect_uri does not match the authorization request")
    if not verifier_matches(verifier, row.code_challenge):
        raise InvalidGrant("PKCE verification failed")
    if resources and check_resource(settings, resources) != row.resource:
        raise InvalidTarget("the resource does not match the authorization request")
    grant = (
        await session.execute(select(OAuthGrant).where(OAuthGrant.id == row.grant_id))
    ).scalar_one()
    if grant.revoked_at is not None:
        raise InvalidGrant("the grant has been revoked")
    if grant.user.disabled_at is not None:
        raise InvalidGrant("the user's account is disabled")

    # Spend the code atomically: of two concurrent exchanges exactly one updates the row.
    claimed = await session.execute(
        update(AuthorizationCode)
        .where(AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None))
        .values(used_at=now)
    )
    if not claimed.rowcount:  # type: ignore[attr-defined]
        await _code_reused(session, row, ip)
    response = await _issue(
        session,
        settings,
        keys,
        grant=grant,
        client=client,
        scopes=grant.scope_list,
        access_scopes=grant.scope_list,
        refresh_token=new_token(REFRESH_PREFIX),
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


def _successor_context(row: RefreshToken) -> dict[str, str]:
    return {"purpose": "refresh-successor", "token": str(row.id), "grant": str(row.grant_id)}


async def refresh(
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    envelope: Envelope,
    *,
    client: OAuthClient,
    refresh_token: str | None,
    scope: str | None,
    resources: list[str],
    ip: str | None,
) -> TokenResponse:
    if not refresh_token:
        raise InvalidRequest("refresh_token is required")
    if "refresh_token" not in client.grant_types:
        raise InvalidRequest("this client may not use the refresh_token grant")
    row = await _refresh_row(session, settings, refresh_token)
    if row is None or row.client_pk != client.id:
        raise InvalidGrant("the refresh token is not valid")
    grant = row.grant
    if resources and check_resource(settings, resources) != grant.resource:
        raise InvalidTarget("the resource does not match the grant")
    if grant.revoked_at is not None:
        raise InvalidGrant("the grant has been revoked")
    if grant.user.disabled_at is not None:
        raise InvalidGrant("the user's account is disabled")
    now = utcnow()
    if row.expires_at <= now:
        raise InvalidGrant("the refresh token has expired")
    # RFC 6749 §6: a narrower scope applies to the new access token; the refresh token keeps
    # the grant's scope ("MUST be identical to that of the refresh token included by the client").
    access_scopes = _narrowed(row.scopes.split(), scope)

    successor = new_token(REFRESH_PREFIX)
    sealed = await envelope.seal(successor.encode(), context=_successor_context(row))
    successor_row = _refresh_row_for(settings, grant, client, row.scopes, successor)
    session.add(successor_row)
    await session.flush()
    rotated = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == row.id, RefreshToken.rotated_at.is_(None))
        .values(rotated_at=now, successor_id=successor_row.id, successor_sealed=sealed.to_bytes())
    )
    if rotated.rowcount:  # type: ignore[attr-defined]
        response = await _issue_access(
            settings,
            keys,
            grant=grant,
            client=client,
            scopes=access_scopes,
            refresh_token=successor,
        )
        _touch(grant, now)
        _touch(client, now)
        _refresh_outcome(session, "rotated", "token.refreshed", grant, client, ip)
        return response

    # Another request rotated it first. A retry inside the grace window gets the live head of
    # the chain, so concurrent refreshers converge on one valid chain; anything else is reuse.
    await session.delete(successor_row)
    head = await _live_head(session, envelope, settings, row, now)
    if head is not None:
        head_row, head_token = head
        response = await _issue_access(
            settings,
            keys,
            grant=grant,
            client=client,
            scopes=_narrowed(head_row.scopes.split(), scope),
            refresh_token=head_token,
        )
        _refresh_outcome(session, "grace_replay", "token.refresh_replayed", grant, client, ip)
        return response
    reuse_detections.add(1, {"gatehouse.token.kind": "refresh_token"})
    await revoke_grant(session, grant.id, reason="refresh_reuse", ip=ip, user_id=grant.user_id)
    _refresh_outcome(session, "reuse_revoked", "token.reuse_detected", grant, client, ip)
    await session.commit()
    raise InvalidGrant("the refresh token was already used; its grant is revoked")


def _refresh_outcome(
    session: AsyncSession,
    outcome: str,
    audit_kind: str,
    grant: OAuthGrant,
    client: OAuthClient,
    ip: str | None,
) -> None:
    """Record how a refresh ended: on its span, in the refresh counter and the audit log."""
    note(gatehouse__outcome=outcome)
    refreshes.add(1, {"gatehouse.outcome": outcome})
    audit.record(
        session,
        audit_kind,
        user_id=grant.user_id,
        ip=ip,
        client_id=client.client_id[:200],
        grant_id=str(grant.id),
    )


def _narrowed(granted: list[str], requested: str | None) -> list[str]:
    if not requested:
        return granted
    wanted = parse_scope(requested)
    if not set(wanted) <= set(granted):
        raise InvalidScope("the requested scope exceeds what was granted")
    return wanted


async def _refresh_row(
    session: AsyncSession, settings: Settings, token: str
) -> RefreshToken | None:
    token_hash = hash_token(settings.secret_key_bytes, token, purpose="refresh")
    stmt = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.execute(stmt)).scalar_one_or_none()


def _refresh_row_for(
    settings: Settings, grant: OAuthGrant, client: OAuthClient, scopes: str, token: str
) -> RefreshToken:
    return RefreshToken(
        token_hash=hash_token(settings.secret_key_bytes, token, purpose="refresh"),
        grant_id=grant.id,
        client_pk=client.id,
        scopes=scopes,
        expires_at=utcnow() + timedelta(seconds=settings.refresh_token_ttl),
    )


async def _live_head(
    session: AsyncSession, envelope: Envelope, settings: Settings, row: RefreshToken, now: datetime
) -> tuple[RefreshToken, str] | None:
    """Follow the chain from `row` while every rotation is inside the grace window."""
    grace = timedelta(seconds=settings.refresh_reuse_grace)
    current = row
    await session.refresh(current)
    for _ in range(16):  # a chain rotated 16 times within the grace window is an attack
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


async def grant_for_token(
    session: AsyncSession, settings: Settings, keys: SigningKeys, token: str, hint: str | None
) -> tuple[OAuthGrant | None, str]:
    """The grant a refresh or access token belongs to, and which kind it was."""

    async def by_refresh() -> OAuthGrant | None:
        token_hash = hash_token(settings.secret_key_bytes, token, purpose="refresh")
        row = (
            await session.execute(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
        ).scalar_one_or_none()
        return row.grant if row else None

    async def by_access() -> OAuthGrant | None:
        try:
            claims = await keys.verify(
                token, issuer=settings.issuer, audience=settings.mcp_resource
            )
        except InvalidAccessToken:
            return None
        return await session.get(OAuthGrant, uuid.UUID(claims.grant_id))

    order = [("access_token", by_access), ("refresh_token", by_refresh)]
    if hint != "access_token" and not token.count(".") == 2:
        order.reverse()
    for kind, finder in order:
        grant = await finder()
        if grant is not None:
            return grant, kind
    return None, ""


async def introspect(
    session: AsyncSession,
    settings: Settings,
    keys: SigningKeys,
    token: str,
    hint: str | None,
    *,
    caller: OAuthClient,
) -> dict[str, Any]:
    """RFC 7662 §2.2: whether the token is active now, and its claims if it is.

    RFC 7662 §4: "the authorization server MUST determine whether or not the token can be used
    at the protected resource making the introspection call". Anyone can register a confidential
    client, so an ordinary client learns only about its own tokens; a resource server (registered
    by an administrator) about every access token minted for our MCP resource, the only audience
    our keys.verify accepts, and never about refresh tokens, which no resource server sees.
    """
    inactive: dict[str, Any] = {"active": False}
    is_resource_server = caller.kind == RESOURCE_SERVER_KIND
    if token.count(".") == 2:
        try:
            claims = await keys.verify(
                token, issuer=settings.issuer, audience=settings.mcp_resource
            )
        except InvalidAccessToken:
            return inactive
        grant = await session.get(OAuthGrant, uuid.UUID(claims.grant_id))
        if (
            grant is None
            or (grant.client_pk != caller.id and not is_resource_server)
            or grant.revoked_at is not None
            or grant.user.disabled_at is not None
        ):
            return inactive
        return {
            "active": True,
            "token_type": "Bearer",
            "scope": " ".join(claims.scopes),
            "client_id": claims.client_id,
            "sub": claims.subject,
            "aud": claims.audience,
            "iss": settings.issuer,
            "exp": claims.expires_at,
            "iat": claims.issued_at,
            "jti": claims.token_id,
            "gid": claims.grant_id,
        }
    if is_resource_server:
        return inactive
    token_hash = hash_token(settings.secret_key_bytes, token, purpose="refresh")
    row = (
        await session.execute(select(RefreshToken).where(RefreshToken.token_hash == token_hash))
    ).scalar_one_or_none()
    if (
        row is None
        or row.client_pk != caller.id
        or row.rotated_at is not None
        or row.expires_at <= utcnow()
        or row.grant.revoked_at is not None
        or row.grant.user.disabled_at is not None
    ):
        return inactive
    return {
        "active": True,
        "token_type": "refresh_token",
        "scope": row.scopes,
        "client_id": row.grant.client.client_id,
        "sub": str(row.grant.user_id),
        "exp": int(row.expires_at.timestamp()),
        "iat": int(row.created_at.timestamp()),
        "gid": str(row.grant_id),
    }


# -- the user's connected apps -----------------------------------------------------------------


@dataclass(frozen=True)
class ConnectedApp:
    client_pk: uuid.UUID
    name: str
    domain: str | None
    scopes: list[str]
    approved: datetime
    last_used: datetime | None


async def connected_apps(session: AsyncSession, *, user_id: uuid.UUID) -> list[ConnectedApp]:
    stmt = (
        select(OAuthGrant)
        .where(OAuthGrant.user_id == user_id, OAuthGrant.revoked_at.is_(None))
        .order_by(OAuthGrant.created_at)
    )
    by_client: dict[uuid.UUID, ConnectedApp] = {}
    for grant in (await session.execute(stmt)).scalars():
        client = grant.client
        seen = by_client.get(client.id)
        scopes = sorted(set(grant.scope_list) | set(seen.scopes if seen else []))
        last_used = max(
            (t for t in (grant.last_used_at, seen.last_used if seen else None) if t), default=None
        )
        by_client[client.id] = ConnectedApp(
            client_pk=client.id,
            name=client.client_name or client.client_id,
            domain=urlsplit(client.client_id).hostname if client.kind == "cimd" else None,
            scopes=scopes,
            approved=seen.approved if seen else grant.created_at,
            last_used=last_used,
        )
    return sorted(by_client.values(), key=lambda app: app.approved, reverse=True)


async def revoke_app(
    session: AsyncSession, *, user_id: uuid.UUID, client_pk: uuid.UUID, ip: str | None
) -> int:
    """Revoke every grant the user gave this client, and forget the remembered consent."""
    grants = (
        await session.execute(
            select(OAuthGrant.id).where(
                OAuthGrant.user_id == user_id,
                OAuthGrant.client_pk == client_pk,
                OAuthGrant.revoked_at.is_(None),
            )
        )
    ).scalars()
    count = 0
    for grant_id in list(grants):
        count += await revoke_grant(
            session, grant_id, reason="user_revoked", ip=ip, user_id=user_id
        )
    await session.execute(
        delete(OAuthConsent).where(
            OAuthConsent.user_id == user_id, OAuthConsent.client_pk == client_pk
        )
    )
    return count


# -- housekeeping -----------------------------------------------------------------------------


async def purge(session: AsyncSession, settings: Settings, key_window: timedelta) -> dict[str, int]:
    """Delete what can never be used again. Idempotent, so any number of replicas may run it."""
    now = utcnow()
    day = timedelta(days=1)
    counts: dict[str, int] = {}

    async def run(name: str, stmt: Any) -> None:
        result = await session.execute(stmt)
        counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]

    await run("codes", delete(AuthorizationCode).where(AuthorizationCode.expires_at < now - day))
    await run("refresh_tokens", delete(RefreshToken).where(RefreshToken.expires_at < now - day))
    await run("grants", delete(OAuthGrant).where(OAuthGrant.revoked_at < now - timedelta(days=30)))
    await run(
        "sessions",
        delete(BrowserSession).where(
            (BrowserSession.expires_at < now - day)
            | (BrowserSession.idle_expires_at < now - day)
            | (BrowserSession.revoked_at < now - day)
        ),
    )
    has_grant = select(OAuthGrant.id).where(OAuthGrant.client_pk == OAuthClient.id).exists()
    await run(
        "stale_clients",
        delete(OAuthClient).where(
            OAuthClient.last_used_at.is_(None),
            # An administrator's credential, used only by introspection, never "used" by a grant.
            OAuthClient.kind != RESOURCE_SERVER_KIND,
            OAuthClient.created_at < now - timedelta(seconds=settings.registration_unused_ttl),
            ~has_grant,
        ),
    )
    # A rotated token's sealed successor is only needed inside the grace window.
    await run(
        "sealed_successors",
        update(RefreshToken)
        .where(
            RefreshToken.successor_sealed.is_not(None),
            RefreshToken.rotated_at < now - timedelta(seconds=settings.refresh_reuse_grace + 60),
        )
        .values(successor_sealed=None),
    )
    await run(
        "signing_keys",
        delete(SigningKey).where(SigningKey.retired_at < now - key_window - day),
    )
    return counts
