"""Server-rendered pages: templates, the CSRF cookie, client IPs, security headers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.config import Settings
from app.kit.errors import CsrfError
from app.kit.security import csrf_token_for, csrf_valid, new_token

APP_DIR = Path(__file__).resolve().parent.parent
# Autoescape every template, whatever its name: a value on a page is always text. Templates
# ship with the code, so each is compiled once per process: no stat of its file (and of every
# template it extends) on each page, which `auto_reload` would do.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(
            [APP_DIR / feature / "templates" for feature in ("auth", "oauth", "vault", "identity")]
        ),
        autoescape=True,
        auto_reload=False,
    )
)

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
    "img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    # same-origin, not no-referrer: under no-referrer browsers send `Origin: null` on our own
    # form posts, which the CSRF origin check must refuse. Nothing leaves for other sites.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _settings(request: Request) -> Settings:
    """`get_settings` as a dependency; async, so FastAPI runs it inline, not in a thread."""
    return get_settings(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
FormStr = Annotated[str, Form()]  # one text field of a posted form


def cookie_name(settings: Settings, base: str) -> str:
    # RFC 6265bis §4.1.3.2: a __Host- cookie must be Secure, Path=/ and have no Domain, so no
    # sibling subdomain can plant or overwrite it.
    return f"__Host-{base}" if settings.https else base


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _csrf_cookie(request: Request, settings: Settings) -> str:
    """This browser's CSRF cookie value, minting one for this response when it has none."""
    existing: str | None = getattr(request.state, "csrf_cookie", None)
    if existing:
        return existing
    value = request.cookies.get(cookie_name(settings, "gh_csrf"))
    if not value or len(value) > 128:
        value = new_token()
        request.state.csrf_cookie_new = True
    request.state.csrf_cookie = value
    return value


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    settings = get_settings(request)
    csrf_cookie = _csrf_cookie(request, settings)
    ctx = {
        "csrf_token": csrf_token_for(settings.secret_key_bytes, csrf_cookie),
        "allow_signup": settings.allow_signup,
        "current_user": getattr(request.state, "user", None),
        "brand_name": settings.brand_name,
        "brand_logo": settings.brand_logo_path is not None,
        # No SMTP_URL (development): each message is written to the server's log instead.
        "mail_to_log": settings.smtp_url is None,
        **(context or {}),
    }
    response = templates.TemplateResponse(
        request, template, ctx, status_code=status_code, headers={**PAGE_HEADERS, **(headers or {})}
    )
    if getattr(request.state, "csrf_cookie_new", False):
        set_cookie(response, settings, "gh_csrf", csrf_cookie, max_age=None)
    return response


def set_cookie(
    response: HTMLResponse | RedirectResponse,
    settings: Settings,
    base: str,
    value: str,
    *,
    max_age: int | None,
) -> None:
    response.set_cookie(
        cookie_name(settings, base),
        value,
        max_age=max_age,
        path="/",
        secure=settings.https,
        httponly=True,
        samesite="lax",
    )


def delete_cookie(response: HTMLResponse | RedirectResponse, settings: Settings, base: str) -> None:
    response.delete_cookie(
        cookie_name(settings, base), path="/", secure=settings.https, httponly=True, samesite="lax"
    )


def _same_origin(request: Request, settings: Settings) -> bool:
    """Browsers send Origin on cross-site form posts; refuse any that is not ours."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    public = urlsplit(settings.public_url)
    ours = {f"{public.scheme}://{public.netloc}", str(request.base_url).rstrip("/")}
    return origin.rstrip("/") in ours


async def verify_csrf(request: Request, csrf_token: Annotated[str, Form()] = "") -> None:
    settings = get_settings(request)
    cookie = request.cookies.get(cookie_name(settings, "gh_csrf"))
    if not _same_origin(request, settings) or not csrf_valid(
        settings.secret_key_bytes, cookie, csrf_token
    ):
        raise CsrfError()


CsrfProtected = Depends(verify_csrf)


def safe_next(value: str | None, default: str = "/account") -> str:
    """Only a same-origin relative path may follow sign-in (no open redirect)."""
    if not value or len(value) > 8192:
        return default
    if not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ch in value for ch in "\\\r\n\t") or any(ord(ch) < 0x20 for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value
