"""Sign-in through upstream providers: /sign-in/<name>, its callback, linking, connect/disconnect.

One callback path per provider (/sign-in/<name>/callback), so a response meant for one provider
can never be taken for another's (OAuth mix-up; RFC 9207 `iss` is checked too when sent).
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth import service as accounts
from app.auth.deps import CurrentUser, OptionalBrowserSession
from app.config import Settings
from app.db import SessionDep
from app.errors import NotFoundError
from app.identity import service
from app.identity.discovery import ProviderUnavailable
from app.identity.flow import (
    FLOW_TTL,
    LINK_COOKIE,
    STATE_COOKIE,
    Pending,
    Providers,
    new_pending,
    pending_cookie,
    read_link,
    read_pending,
    state_hash,
)
from app.identity.id_token import IdTokenRejected
from app.identity.pages import (
    Refuser,
    callback_problem,
    refusal_page,
    refused_message,
    resolution_response,
    unavailable_message,
    unverifiable_message,
)
from app.identity.upstream import Upstream, UpstreamPerson, UpstreamRefused
from app.kit.web import (
    CsrfProtected,
    FormStr,
    SettingsDep,
    client_ip,
    cookie_name,
    delete_cookie,
    get_settings,
    render,
    safe_next,
    set_cookie,
)
from app.state import ServicesDep, services_of
from app.telemetry import flow_span, note, outcome, traced

logger = logging.getLogger("gatehouse.identity")
router = APIRouter(tags=["identity"])


async def get_providers(services: ServicesDep) -> Providers:
    return services.authorization().identity_providers


ProvidersDep = Annotated[Providers, Depends(get_providers)]


def _upstream(providers: Providers, name: str) -> Upstream:
    upstream = providers.get(name)
    if upstream is None:
        raise NotFoundError("There is no such sign-in provider here.")
    return upstream


def callback_url(settings: Settings, upstream: Upstream) -> str:
    return settings.public_url + upstream.config.callback_path()


async def _to_provider(
    request: Request, upstream: Upstream, next_path: str, connect_user: str | None
) -> Response:
    settings = get_settings(request)
    pending = new_pending(upstream.config.name, next_path, connect_user)
    with flow_span("identity.start", gatehouse__provider=upstream.config.name) as span:
        try:
            url = await upstream.authorization_url(
                redirect_uri=callback_url(settings, upstream),
                state=pending.state,
                nonce=pending.nonce,
                code_challenge=pending.challenge,
            )
        except ProviderUnavailable as exc:
            logger.warning("identity provider %s is unavailable: %s", upstream.config.name, exc)
            outcome(span, "unavailable")
            return refusal_page(
                request,
                upstream,
                "unavailable",
                unavailable_message(upstream),
                next_path=next_path,
                status_code=503,
            )
        outcome(span, "redirected")
    response = RedirectResponse(url, status_code=303)
    set_cookie(
        response,
        settings,
        STATE_COOKIE,
        pending_cookie(settings.secret_key_bytes, pending),
        max_age=FLOW_TTL,
    )
    return response


@router.get("/sign-in/{name}")
async def start(
    name: str,
    request: Request,
    providers: ProvidersDep,
    browser: OptionalBrowserSession,
    next: str = "",
) -> Response:
    upstream = _upstream(providers, name)
    if browser is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return await _to_provider(request, upstream, safe_next(next), None)


@router.post("/account/identities/{name}/connect", dependencies=[CsrfProtected])
async def connect(
    name: str, request: Request, providers: ProvidersDep, user: CurrentUser
) -> Response:
    upstream = _upstream(providers, name)
    if user.email_verified_at is None:
        # Whoever signed up with an address they cannot read must not give themselves a way in
        # that outlives the owner taking the account back (a password reset).
        return render(
            request,
            "error.html",
            {
                "title": "Confirm your address first",
                "message": "Confirm your email address (the link we emailed you, or send a new "
                "one from your account), then connect a sign-in method.",
            },
            status_code=403,
        )
    return await _to_provider(request, upstream, "/account", str(user.id))


@router.get("/sign-in/{name}/callback")
@traced("identity.callback")
async def callback(
    name: str,
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    providers: ProvidersDep,
    browser: OptionalBrowserSession,
    state: str = "",
    code: str = "",
    error: str = "",
    iss: str | None = None,
) -> Response:
    upstream = _upstream(providers, name)
    note(gatehouse__provider=name)
    key = settings.secret_key_bytes
    pending = read_pending(key, request.cookies.get(cookie_name(settings, STATE_COOKIE)))
    refuse = Refuser(request, session, upstream, pending.next_path if pending else "")
    # Failed callbacks count against the address, as failed password sign-ins do: nobody can
    # make us call the provider's token endpoint without bound.
    limits = services_of(request.app).rate_limits
    verdict = await limits.check(limits.rule(settings.signin_limit_ip), "signin-ip", refuse.ip)
    if not verdict.allowed:
        return await refuse(
            "throttled",
            "Too many failed sign-ins from this address. Try again later.",
            status_code=429,
        )
    problem = callback_problem(upstream, pending, state=state, code=code, error=error)
    if problem is not None or pending is None:
        reason, message, status = problem or ("state_missing", "Start again.", 400)
        return await refuse(reason, message, status_code=status)
    # RFC 6749 §10.5: a code is used once; so is the state that came with it, on any replica.
    if not await service.consume_state(session, state_hash=state_hash(key, state), ttl=FLOW_TTL):
        return await refuse("state_replayed", "This sign-in was already used. Start again.")
    person = await _ask_provider(upstream, settings, pending, code=code, iss=iss, refuse=refuse)
    if not isinstance(person, UpstreamPerson):
        return person
    connect_to = None
    if pending.connect_user is not None:
        if browser is None or str(browser.user_id) != pending.connect_user:
            return await refuse("connect_signed_out", "Sign in again, then connect from /account.")
        connect_to = browser.user
    resolution = await service.resolve(
        session,
        config=upstream.config,
        person=person,
        connect_to=connect_to,
        allow_signup=settings.allow_signup,
    )
    if connect_to is not None and isinstance(resolution, service.SignIn):
        response: Response = RedirectResponse("/account", status_code=303)  # still signed in
    else:
        response = await resolution_response(
            request, session, upstream, resolution, person=person, next_path=pending.next_path
        )
    delete_cookie(response, settings, STATE_COOKIE)  # type: ignore[arg-type]
    return response


async def _ask_provider(
    upstream: Upstream,
    settings: Settings,
    pending: Pending,
    *,
    code: str,
    iss: str | None,
    refuse: Refuser,
) -> UpstreamPerson | Response:
    """The person the provider vouches for, or the refusal page saying why not."""
    name = upstream.config.name
    try:
        await upstream.check_response_issuer(iss)
        return await upstream.person(
            code=code,
            redirect_uri=callback_url(settings, upstream),
            code_verifier=pending.verifier,
            nonce=pending.nonce,
        )
    except ProviderUnavailable as exc:
        logger.warning("identity provider %s failed during sign-in: %s", name, exc)
        return await refuse("unavailable", unavailable_message(upstream), status_code=503)
    except IdTokenRejected as exc:
        logger.warning("ID token from identity provider %s refused: %s", name, exc.reason)
        return await refuse(f"id_token_{exc.reason}", unverifiable_message(upstream))
    except UpstreamRefused as exc:
        return await refuse(exc.reason, refused_message(upstream, exc.reason))


# -- linking an existing account by its password -----------------------------------------------


@router.get("/sign-in/{name}/link", response_class=HTMLResponse)
async def link_page(
    name: str, request: Request, settings: SettingsDep, providers: ProvidersDep
) -> Response:
    upstream = _upstream(providers, name)
    pending = _pending_link(request, settings, name)
    if pending is None:
        return _link_expired(request, upstream)
    return render(
        request,
        "identity_link.html",
        {"label": upstream.config.label, "name": name, "email": pending["email"]},
    )


def _link_expired(request: Request, upstream: Upstream) -> HTMLResponse:
    return refusal_page(
        request,
        upstream,
        "link_expired",
        "This link request has expired. Start again.",
        next_path="",
        status_code=400,
    )


def _pending_link(request: Request, settings: SettingsDep, name: str) -> dict[str, Any] | None:
    data = read_link(
        settings.secret_key_bytes, request.cookies.get(cookie_name(settings, LINK_COOKIE))
    )
    return data if data is not None and data.get("provider") == name else None


@router.post("/sign-in/{name}/link", response_class=HTMLResponse, dependencies=[CsrfProtected])
@traced("identity.link")
async def link_account(
    name: str,
    *,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    providers: ProvidersDep,
    password: FormStr = "",
) -> Response:
    upstream = _upstream(providers, name)
    pending = _pending_link(request, settings, name)
    if pending is None:
        return _link_expired(request, upstream)
    # The same limits as the password sign-in: this form is one more place to guess at.
    limits = services_of(request.app).rate_limits
    keys = [
        (limits.rule(settings.signin_limit_account), "signin-account", str(pending["email"])[:320]),
        (limits.rule(settings.signin_limit_ip), "signin-ip", client_ip(request) or "unknown"),
    ]
    for rule, kind, key in keys:
        if not (await limits.check(rule, kind, key.lower())).allowed:
            return _link_form(
                request, upstream, pending, "Too many failed attempts. Try later.", 429
            )
    user = await accounts.authenticate(session, email=str(pending["email"]), password=password)
    if user is None or str(user.id) != pending["user"]:
        for rule, kind, key in keys:
            await limits.hit(rule, kind, key.lower())
        _link_failed(request, session, name, "bad_password")
        return _link_form(request, upstream, pending, "That password is not right.", 401)
    person = _person(pending)
    if not await service.link_once(session, user=user, config=upstream.config, person=person):
        _link_failed(request, session, name, "linked_to_another_account", user.id)
        taken = f"This {upstream.config.label} sign-in is linked to another account here."
        return _link_form(request, upstream, pending, taken, 409)
    response = await resolution_response(
        request,
        session,
        upstream,
        service.SignIn(user, linked=True),
        person=person,
        next_path=str(pending["next"]),
    )
    delete_cookie(response, settings, LINK_COOKIE)  # type: ignore[arg-type]
    return response


def _link_failed(
    request: Request,
    session: AsyncSession,
    provider: str,
    reason: str,
    user_id: uuid.UUID | None = None,
) -> None:
    audit.record(
        session,
        "identity.link_failed",
        user_id=user_id,
        ip=client_ip(request),
        provider=provider,
        reason=reason,
    )


def _link_form(
    request: Request, upstream: Upstream, pending: dict[str, Any], error: str, status: int
) -> HTMLResponse:
    context = {"label": upstream.config.label, "name": upstream.config.name, "error": error}
    return render(
        request, "identity_link.html", {**context, "email": pending["email"]}, status_code=status
    )


def _person(pending: dict[str, Any]) -> UpstreamPerson:
    return UpstreamPerson(
        issuer=str(pending["issuer"]),
        subject=str(pending["subject"]),
        email=str(pending["email"]),
        email_verified=True,
        name=str(pending.get("display", "")),
    )


# -- the account page's Disconnect -----------------------------------------------------------------


@router.post("/account/identities/{identity_id}/disconnect", dependencies=[CsrfProtected])
async def disconnect(
    identity_id: uuid.UUID, request: Request, session: SessionDep, user: CurrentUser
) -> Response:
    problem = await service.disconnect(
        session, user=user, identity_id=identity_id, ip=client_ip(request)
    )
    if problem:
        return render(
            request,
            "error.html",
            {"title": "Cannot disconnect", "message": problem},
            status_code=400,
        )
    return RedirectResponse("/account", status_code=303)
