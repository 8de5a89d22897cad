"""What the person sees after a provider answers: signed in, a password to confirm, or a page in
plain words saying why not (never a stack trace, never anything the provider sent)."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth import service as accounts
from app.auth.deps import signed_in_redirect
from app.auth.mfa import signin as mfa_signin
from app.identity import service
from app.identity.flow import LINK_COOKIE, LINK_TTL, STATE_COOKIE, Pending, link_cookie
from app.identity.upstream import Upstream, UpstreamPerson
from app.kit.security import constant_time_equals
from app.kit.web import client_ip, delete_cookie, get_settings, render, safe_next, set_cookie
from app.state import services_of
from app.telemetry import note, signin_failures


def sign_in_link(next_path: str) -> str:
    return "/sign-in" + (f"?next={quote(next_path, safe='')}" if next_path else "")


def refusal_page(
    request: Request,
    upstream: Upstream,
    reason: str,
    message: str,
    *,
    next_path: str,
    status_code: int,
) -> HTMLResponse:
    headers = {"Retry-After": "60"} if status_code == 503 else None
    return render(
        request,
        "identity_error.html",
        {
            "title": f"Signing in with {upstream.config.label}",
            "message": message,
            "reason": reason,
            "again": sign_in_link(safe_next(next_path, "")),
        },
        status_code=status_code,
        headers=headers,
    )


async def resolution_response(
    request: Request,
    session: AsyncSession,
    upstream: Upstream,
    resolution: service.Resolution,
    *,
    person: UpstreamPerson,
    next_path: str,
) -> Response:
    settings = get_settings(request)
    name = upstream.config.name
    ip = client_ip(request)
    if isinstance(resolution, service.SignIn):
        user = resolution.user
        # A second factor turned on here is asked for after a provider too: it is this account's
        # rule, whoever vouched for the person's first factor.
        second = await mfa_signin.second_step(
            request, session, settings, user=user, next_path=safe_next(next_path)
        )
        if second is not None:
            return second
        new = await accounts.create_session(
            session, settings, user=user, ip=ip, user_agent=request.headers.get("user-agent")
        )
        audit.record(session, "signin.success", user_id=user.id, ip=ip, method=f"provider:{name}")
        note(gatehouse__outcome="success", enduser__id=str(user.id), gatehouse__provider=name)
        return signed_in_redirect(settings, new, safe_next(next_path))
    if isinstance(resolution, service.ConfirmPassword):
        note(gatehouse__outcome="confirm_password", gatehouse__provider=name)
        data = {
            "provider": name,
            "issuer": person.issuer,
            "subject": person.subject,
            "email": resolution.user.email,
            "display": person.name,
            "user": str(resolution.user.id),
            "next": safe_next(next_path),
        }
        response = RedirectResponse(f"/sign-in/{name}/link", status_code=303)
        set_cookie(
            response,
            settings,
            LINK_COOKIE,
            link_cookie(settings.secret_key_bytes, data),
            max_age=LINK_TTL,
        )
        return response
    note(gatehouse__outcome="failure", gatehouse__reason=resolution.reason)
    signin_failures.add(1, {"gatehouse.reason": f"provider_{resolution.reason}"[:64]})
    audit.record(session, "identity.refused", ip=ip, provider=name, reason=resolution.reason)
    return refusal_page(
        request,
        upstream,
        resolution.reason,
        resolution.message,
        next_path=next_path,
        status_code=403,
    )


def unavailable_message(upstream: Upstream) -> str:
    return f"{upstream.config.label} is not answering right now. Try again in a minute."


def unverifiable_message(upstream: Upstream) -> str:
    label = upstream.config.label
    return f"{label}'s answer could not be verified, so you were not signed in."


def callback_problem(
    upstream: Upstream, pending: Pending | None, *, state: str, code: str, error: str
) -> tuple[str, str, int] | None:
    """What is wrong with a callback before anything is asked of the provider, if anything."""
    label = upstream.config.label
    # The state cookie is this browser's proof that it started this sign-in (RFC 6749 §10.12).
    if pending is None or pending.provider != upstream.config.name:
        return (
            "state_missing",
            "This sign-in has expired or was started in another browser. Start again.",
            400,
        )
    if not constant_time_equals(pending.state, state[:128]):
        return (
            "state_mismatch",
            "This sign-in was started in another browser or window. Start again here.",
            400,
        )
    if error == "access_denied":
        return "cancelled", f"You cancelled signing in with {label}. Nothing was changed.", 200
    if error:
        return "provider_error", f"{label} did not sign you in. Start again.", 400
    if not code or len(code) > 2048:
        return "no_code", f"{label} sent no authorization code. Start again.", 400
    return None


def refused_message(upstream: Upstream, reason: str) -> str:
    label = upstream.config.label
    if reason == "primary_email_unverified":
        return (
            f"Your primary email address at {label} is not verified. Verify it with {label}, "
            "then try again."
        )
    if reason == "no_primary_email":
        return f"{label} did not tell us a primary email address for your account."
    if reason in ("missing_iss", "wrong_iss"):
        return f"The answer did not come from {label}, so you were not signed in."
    if reason in ("token_invalid_grant", "token_bad_verification_code"):
        return "This sign-in was already used or has expired. Start again."
    return f"{label} refused to complete the sign-in. Start again."


class Refuser:
    """A refusal page for the callback, with its audit event, span outcome and metric; the
    state cookie goes with it (a sign-in is answered once, either way)."""

    def __init__(
        self, request: Request, session: AsyncSession, upstream: Upstream, next_path: str
    ) -> None:
        self.request = request
        self.session = session
        self.upstream = upstream
        self.next_path = next_path
        self.ip = client_ip(request) or "unknown"

    async def __call__(self, reason: str, message: str, *, status_code: int = 400) -> Response:
        settings = get_settings(self.request)
        if reason not in ("cancelled", "throttled", "unavailable"):
            limits = services_of(self.request.app).rate_limits
            await limits.hit(limits.rule(settings.signin_limit_ip), "signin-ip", self.ip)
        note(gatehouse__outcome="failure", gatehouse__reason=reason)
        signin_failures.add(1, {"gatehouse.reason": f"provider_{reason}"[:64]})
        audit.record(
            self.session,
            "identity.refused",
            ip=client_ip(self.request),
            provider=self.upstream.config.name,
            reason=reason,
        )
        response = refusal_page(
            self.request,
            self.upstream,
            reason,
            message,
            next_path=self.next_path,
            status_code=status_code,
        )
        if status_code == 429:
            response.headers["Retry-After"] = "900"
        delete_cookie(response, settings, STATE_COOKIE)
        return response
