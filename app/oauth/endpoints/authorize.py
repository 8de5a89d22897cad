"""GET /authorize (RFC 6749 §4.1.1, OAuth 2.1, RFC 7636, RFC 8707, RFC 9207)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.deps import OptionalBrowserSession, sign_in_url
from app.auth.models import BrowserSession
from app.kit.web import client_ip
from app.oauth.authorization import (
    AuthorizationQuery,
    AuthorizationRequest,
    Target,
    check_request,
    redirect_is_trusted,
    resolve_target,
)
from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.clients import ClientProblem
from app.oauth.consent import (
    approval_block,
    consent_covers,
    consent_fields,
)
from app.oauth.deps import Authorizer, AuthorizerDep
from app.oauth.endpoints.pages import (
    AuthorizationPageError,
    code_redirect,
    consent_page,
    error_location,
    refusal,
)
from app.oauth.errors import ConsentRequired, InteractionRequired, LoginRequired, OAuthError
from app.oauth.grants.authorization_code import approve
from app.oauth.pending import seal_pending
from app.telemetry import note, traced

router = APIRouter()


@router.get("/authorize")
@traced("oauth.authorize")
async def authorize(
    request: Request, *, authorizer: AuthorizerDep, browser: OptionalBrowserSession
) -> Response:
    settings = authorizer.settings
    query = AuthorizationQuery.parse(request.query_params)
    target = await _target(authorizer.session, authorizer.fetcher, query)
    note(oauth__client_id=target.client.client_id, gatehouse__signed_in=browser is not None)
    try:
        checked = check_request(query, target, mcp_resource=settings.mcp_resource)
        if browser is None:
            return _sign_in(request, query)
        return await _answer(request, authorizer, browser, query=query, checked=checked)
    except OAuthError as exc:
        # Errors are the client's to hear about, at its redirect URI, if that can be trusted.
        trusted = await redirect_is_trusted(
            authorizer.session, user_id=browser.user_id if browser else None, target=target
        )
        location = error_location(settings, target.redirect_uri, exc, query.state)
        return refusal(request, location, target.redirect_uri, exc, trusted=trusted)


async def _target(session: AsyncSession, fetcher: CimdFetcher, query: AuthorizationQuery) -> Target:
    # Until the client and its redirect URI are known to be genuine, errors go on a page: a
    # redirect to an unverified URI would make us an open redirector.
    try:
        return await resolve_target(session, fetcher, query)
    except ClientProblem as exc:
        note(gatehouse__outcome="refused", error__type="invalid_client")
        raise AuthorizationPageError(str(exc)) from exc


def _sign_in(request: Request, query: AuthorizationQuery) -> Response:
    if "none" in query.prompt:
        raise LoginRequired("the user is not signed in")
    note(gatehouse__outcome="sign_in_required")
    return RedirectResponse(sign_in_url(f"{request.url.path}?{request.url.query}"), 303)


async def _answer(
    request: Request,
    authorizer: Authorizer,
    browser: BrowserSession,
    *,
    query: AuthorizationQuery,
    checked: AuthorizationRequest,
) -> Response:
    """A code straight away if the person approved this before, else the consent page."""
    session, settings = authorizer.session, authorizer.settings
    # A rule the person does not meet yet (REQUIRE_VERIFIED_EMAIL, REQUIRE_MFA) holds back even
    # an approval remembered from before the rule was set.
    block = await approval_block(session, authorizer.gates, user_id=browser.user_id)
    if block is not None and "none" in query.prompt:
        raise InteractionRequired(block.reason)
    remembered = (
        block is None
        and "consent" not in query.prompt
        and await consent_covers(
            session,
            user_id=browser.user_id,
            client_pk=checked.client.id,
            redirect_uri=checked.redirect_uri,
            scopes=checked.scopes,
        )
    )
    if remembered:
        code = await approve(
            session=session,
            settings=settings,
            user_id=browser.user_id,
            authorization=checked,
            scopes=checked.scopes,
            remember=False,
            ip=client_ip(request),
        )
        note(gatehouse__outcome="consent_remembered")
        return code_redirect(settings, checked, code)
    if "none" in query.prompt:
        raise ConsentRequired("the user must approve")
    pending = seal_pending(settings.secret_key_bytes, checked, session_id=browser.id)
    fields = await consent_fields(session, authorizer.extensions, user_id=browser.user_id)
    note(gatehouse__outcome="consent_blocked" if block else "consent_shown")
    return consent_page(request, checked, pending, fields, block=block)
