"""The authorization request (RFC 6749 §4.1.1): parsed, its client and redirect URI resolved, and
then checked, in that order, because errors before the redirect URI is trusted go on a page."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import QueryParams

from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.clients import ClientProblem, check_client_scope, resolve_client
from app.oauth.consent import consent_covers
from app.oauth.errors import InvalidRequest, UnauthorizedClient, UnsupportedResponseType
from app.oauth.models import OAuthClient
from app.oauth.pkce import challenge_is_well_formed
from app.oauth.redirect_uris import find_registered, is_native_redirect, redirect_uri_problem
from app.oauth.resource_indicators import check_resource
from app.oauth.scopes import BASE_SCOPE, parse_scope

MAX_STATE_LENGTH = 2048


@dataclass(frozen=True)
class AuthorizationQuery:
    """The query of GET /authorize, as sent."""

    client_id: str | None
    redirect_uri: str | None
    response_type: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    scope: str | None
    resources: tuple[str, ...]
    state: str | None
    prompt: frozenset[str]
    repeated: tuple[str, ...]

    @classmethod
    def parse(cls, params: QueryParams) -> AuthorizationQuery:
        # RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than once."
        repeated = sorted(
            k for k in set(params.keys()) if k != "resource" and len(params.getlist(k)) > 1
        )
        return cls(
            client_id=params.get("client_id"),
            redirect_uri=params.get("redirect_uri"),
            response_type=params.get("response_type"),
            code_challenge=params.get("code_challenge"),
            code_challenge_method=params.get("code_challenge_method"),
            scope=params.get("scope"),
            resources=tuple(params.getlist("resource")),
            state=params.get("state"),
            prompt=frozenset((params.get("prompt") or "").split()),
            repeated=tuple(repeated),
        )


@dataclass(frozen=True)
class Target:
    """Where an authorization answer may go: a genuine client and one of its redirect URIs."""

    client: OAuthClient
    redirect_uri: str
    redirect_uri_given: bool


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request: everything approving it needs."""

    client: OAuthClient
    redirect_uri: str
    redirect_uri_given: bool
    scopes: tuple[str, ...]
    resource: str
    code_challenge: str
    state: str | None


async def resolve_target(
    session: AsyncSession, fetcher: CimdFetcher, query: AuthorizationQuery
) -> Target:
    """The client and redirect URI, or ClientProblem: a redirect to an unverified URI would make
    us an open redirector."""
    if "client_id" in query.repeated or "redirect_uri" in query.repeated:
        raise ClientProblem("client_id and redirect_uri must each appear once.")
    client = await resolve_client(session, fetcher, query.client_id)
    redirect_uri = query.redirect_uri
    if redirect_uri is None:
        if len(client.redirect_uris) != 1:
            raise ClientProblem("The request has no redirect_uri.")
        return Target(client, client.redirect_uris[0], redirect_uri_given=False)
    if (
        redirect_uri_problem(redirect_uri) is not None
        or find_registered(client.redirect_uris, redirect_uri) is None
    ):
        raise ClientProblem(
            "The redirect_uri is not one this client registered, so Gatehouse will not send "
            "you there."
        )
    return Target(client, redirect_uri, redirect_uri_given=True)


def _check_code_flow(query: AuthorizationQuery, client: OAuthClient) -> str:
    """The PKCE challenge of a well-formed code request by a client allowed to make one."""
    if query.repeated:
        raise InvalidRequest(f"parameters repeated: {', '.join(query.repeated)}")
    # RFC 6749 §4.1.2.1: a missing parameter is invalid_request; another value is
    # unsupported_response_type.
    if not query.response_type:
        raise InvalidRequest("response_type is required (code)")
    if query.response_type != "code":
        raise UnsupportedResponseType("response_type must be code")
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient("this client may not use the authorization code grant")
    challenge = query.code_challenge
    # OAuth 2.1 §4.1.1 / MCP: PKCE is required, and S256 is the only method we accept.
    if not challenge:
        raise InvalidRequest("code_challenge is required (PKCE with S256)")
    if query.code_challenge_method != "S256":
        raise InvalidRequest("code_challenge_method must be S256")
    if not challenge_is_well_formed(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    return challenge


def check_request(
    query: AuthorizationQuery, target: Target, *, mcp_resource: str
) -> AuthorizationRequest:
    """The request, checked; raises the OAuthError to send back to the client."""
    challenge = _check_code_flow(query, target.client)
    scopes = parse_scope(query.scope)
    check_client_scope(target.client, scopes)
    resource = check_resource(mcp_resource, query.resources)
    if query.state is not None and len(query.state) > MAX_STATE_LENGTH:
        raise InvalidRequest("state is too long")
    return AuthorizationRequest(
        client=target.client,
        redirect_uri=target.redirect_uri,
        redirect_uri_given=target.redirect_uri_given,
        scopes=tuple(scopes),
        resource=resource,
        code_challenge=challenge,
        state=query.state,
    )


def granted_scopes(requested: Sequence[str], ticked: Sequence[str]) -> list[str]:
    """`mcp` is always granted; optional scopes only when requested and left ticked."""
    chosen = set(ticked)
    return [s for s in requested if s == BASE_SCOPE or s in chosen]


async def redirect_is_trusted(
    session: AsyncSession, *, user_id: uuid.UUID | None, target: Target
) -> bool:
    """Whether an error may be sent to the redirect URI without asking the person first.

    MCP 2025-11-25 "Open Redirection": authorization servers "SHOULD only automatically redirect
    the user agent if it trusts the redirection URI". Anyone can register https://evil.example,
    so a web redirect URI is trusted only once this person has approved this client there;
    loopback and app schemes land on the person's own device.
    """
    if is_native_redirect(target.redirect_uri):
        return True
    return user_id is not None and await consent_covers(
        session,
        user_id=user_id,
        client_pk=target.client.id,
        redirect_uri=target.redirect_uri,
        scopes=[],
    )
