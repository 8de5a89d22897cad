"""What /authorize and /consent send the browser: the consent page, a refusal (a redirect to the
client or a page), and the redirect that carries the code."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from app.config import Settings
from app.errors import AppError
from app.kit.web import PAGE_CSP, render
from app.oauth.authorization import AuthorizationRequest
from app.oauth.consent import ApprovalBlock, ConsentField
from app.oauth.errors import OAuthError
from app.oauth.logos import is_fetchable
from app.oauth.redirect_uris import csp_source, is_native_redirect
from app.oauth.scopes import BASE_SCOPE, DESCRIPTIONS, WRITE_SCOPE
from app.telemetry import note


class AuthorizationPageError(AppError):
    title = "This sign-in link cannot be used"


def with_query(redirect_uri: str, params: dict[str, str | None]) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    if not urlsplit(redirect_uri).query:
        separator = "" if redirect_uri.endswith("?") else "?"
    else:
        separator = "" if redirect_uri.endswith("&") else "&"
    return f"{redirect_uri}{separator}{query}"


def code_redirect(settings: Settings, authorization: AuthorizationRequest, code: str) -> Response:
    # RFC 6749 §4.1.2 and RFC 9207 §2: code, state, and iss.
    location = with_query(
        authorization.redirect_uri,
        {"code": code, "state": authorization.state, "iss": settings.issuer},
    )
    return RedirectResponse(location, status_code=303)


def error_location(
    settings: Settings, redirect_uri: str, error: OAuthError, state: str | None
) -> str:
    # RFC 6749 §4.1.2.1 and RFC 9207 §2: error, error_description, state, and iss.
    return with_query(
        redirect_uri,
        {
            "error": error.error,
            "error_description": error.description,
            "state": state,
            "iss": settings.issuer,
        },
    )


def refusal(
    request: Request, location: str, redirect_uri: str, error: OAuthError, *, trusted: bool
) -> Response:
    """Send an authorization error back to the client if its redirect URI is trusted; else show
    it on a page, with a link the person may choose to follow back to the app."""
    note(gatehouse__outcome="error", error__type=error.error)
    if trusted:
        return RedirectResponse(location, status_code=303)
    return render(
        request,
        "error.html",
        {
            "title": "This sign-in link cannot be used",
            "message": f"The app's request was refused: {error.description} ({error.error}).",
            "return_url": location,
            "return_host": urlsplit(redirect_uri).hostname,
        },
        status_code=400,
    )


def _consent_csp(redirect_uri: str) -> str:
    # Browsers apply form-action to the redirect that follows a form post, so the consent form
    # must be allowed to land on the client's redirect URI.
    source = csp_source(redirect_uri)  # "" for a URI with no origin we could name safely
    return PAGE_CSP.replace("form-action 'self'", f"form-action 'self' {source}".rstrip())


def consent_page(
    request: Request,
    authorization: AuthorizationRequest,
    pending: str,
    fields: Sequence[ConsentField],
    *,
    credential_errors: dict[str, str] | None = None,
    block: ApprovalBlock | None = None,
    status_code: int = 200,
) -> Response:
    client = authorization.client
    redirect_uri = authorization.redirect_uri
    redirect = urlsplit(redirect_uri)
    logo = is_fetchable((client.client_metadata or {}).get("logo_uri"))
    return render(
        request,
        "consent.html",
        {
            "client_name": client.client_name or "An unnamed app",
            "verified_domain": urlsplit(client.client_id).hostname
            if client.kind == "cimd"
            else None,
            "redirect_host": redirect.hostname or f"{redirect.scheme}:",
            "redirect_scheme": redirect.scheme,
            "native_redirect": is_native_redirect(redirect_uri),
            "scopes": [(s, DESCRIPTIONS[s]) for s in authorization.scopes],
            "base_scope": BASE_SCOPE,
            "write_scope": WRITE_SCOPE,
            "pending": pending,
            "error": "",
            "fields": fields,
            "credential_errors": credential_errors or {},
            "block": block,
            "logo_src": "/consent/logo?" + urlencode({"client_id": client.client_id})
            if logo
            else None,
        },
        status_code=status_code,
        headers={"Content-Security-Policy": _consent_csp(redirect_uri)},
    )
