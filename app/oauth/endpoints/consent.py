"""POST /consent: the person approves or denies the request the consent page showed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from app import audit
from app.auth.deps import OptionalBrowserSession
from app.auth.models import BrowserSession
from app.kit.web import CsrfProtected, FormStr, client_ip
from app.oauth.authorization import AuthorizationRequest, Target, granted_scopes
from app.oauth.clients import ClientProblem, resolve_client
from app.oauth.consent import accept_extensions, approval_block, consent_fields
from app.oauth.deps import Authorizer, AuthorizerDep
from app.oauth.endpoints.pages import (
    AuthorizationPageError,
    code_redirect,
    consent_page,
    error_location,
)
from app.oauth.errors import AccessDenied
from app.oauth.grants.authorization_code import approve
from app.oauth.pending import open_pending
from app.oauth.redirect_uris import find_registered
from app.telemetry import note, traced

router = APIRouter()


@router.post("/consent", dependencies=[CsrfProtected])
@traced("oauth.consent")
async def consent(
    request: Request,
    *,
    authorizer: AuthorizerDep,
    browser: OptionalBrowserSession,
    pending: FormStr = "",
    action: FormStr = "",
    scope: Annotated[list[str] | None, Form()] = None,
) -> Response:
    if browser is None:
        raise AuthorizationPageError(
            "You were signed out before approving. Go back to the app and connect again."
        )
    session, settings, extensions = authorizer.session, authorizer.settings, authorizer.extensions
    checked = await _reopen(authorizer, browser, pending)
    ip = client_ip(request)
    if action == "deny":
        return _deny(authorizer, browser, checked, ip)
    if action != "approve":
        raise AuthorizationPageError("Choose Approve or Deny.")
    block = await approval_block(session, authorizer.gates, user_id=browser.user_id)
    if block is not None:
        note(gatehouse__outcome="consent_blocked")
        fields = await consent_fields(session, extensions, user_id=browser.user_id)
        return consent_page(request, checked, pending, fields, block=block, status_code=403)

    # Steps other features add (credentials for upstream services): each runs before anything
    # is issued; any failure shows the page again and keeps nothing.
    form = await request.form()
    problems = await accept_extensions(
        session,
        extensions,
        user_id=browser.user_id,
        form={k: v for k, v in form.items() if isinstance(v, str)},
        ip=ip,
        reload=(browser, getattr(request.state, "user", None), checked.client),
    )
    if problems:
        note(gatehouse__outcome="credential_rejected")
        fields = await consent_fields(session, extensions, user_id=browser.user_id)
        return consent_page(
            request, checked, pending, fields, credential_errors=problems, status_code=400
        )
    granted = granted_scopes(checked.scopes, scope or [])
    code = await approve(
        session=session,
        settings=settings,
        user_id=browser.user_id,
        authorization=checked,
        scopes=granted,
        remember=True,
        ip=ip,
    )
    note(gatehouse__outcome="approved", oauth__scope=" ".join(granted))
    return code_redirect(settings, checked, code)


async def _reopen(
    authorizer: Authorizer, browser: BrowserSession, pending: str
) -> AuthorizationRequest:
    """The request the page was about, if it is still this browser's and its client's."""
    secret = authorizer.settings.secret_key_bytes
    approval = open_pending(secret, pending, session_id=browser.id)
    if approval is None:
        raise AuthorizationPageError(
            "This approval request has expired or was not made in this browser. Go back to the "
            "app and connect again."
        )
    try:
        client = await resolve_client(authorizer.session, authorizer.fetcher, approval.client_id)
    except ClientProblem as exc:
        raise AuthorizationPageError(str(exc)) from exc
    if find_registered(client.redirect_uris, approval.redirect_uri) is None:
        raise AuthorizationPageError("This client no longer uses that redirect URI.")
    target = Target(client, approval.redirect_uri, approval.redirect_uri_given)
    return approval.request_for(target)


def _deny(
    authorizer: Authorizer, browser: BrowserSession, checked: AuthorizationRequest, ip: str | None
) -> Response:
    client_id = checked.client.client_id
    audit.record(
        authorizer.session,
        "grant.denied",
        user_id=browser.user_id,
        ip=ip,
        client_id=client_id[:200],
    )
    note(gatehouse__outcome="denied", oauth__client_id=client_id)
    # The person chose to go back to the app: this redirect is theirs, not an attacker's.
    denied = AccessDenied("the user denied the request")
    return RedirectResponse(
        error_location(authorizer.settings, checked.redirect_uri, denied, checked.state),
        status_code=303,
    )
