"""Who is signed in: named dependencies for the pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse

from app.auth.models import BrowserSession, User
from app.auth.service import NewSession, session_from_token
from app.config import Settings
from app.db import SessionDep
from app.kit.web import SettingsDep, cookie_name, set_cookie

SESSION_COOKIE = "gh_session"


class SignInRequired(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to /sign-in."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def session_cookie(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(cookie_name(settings, SESSION_COOKIE))


async def optional_browser_session(
    request: Request, session: SessionDep, settings: SettingsDep
) -> BrowserSession | None:
    record = await session_from_token(session, settings, session_cookie(request, settings))
    request.state.user = record.user if record else None
    return record


async def required_browser_session(
    request: Request,
    record: Annotated[BrowserSession | None, Depends(optional_browser_session)],
) -> BrowserSession:
    if record is None:
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path)
    return record


async def current_user(
    record: Annotated[BrowserSession, Depends(required_browser_session)],
) -> User:
    return record.user


OptionalBrowserSession = Annotated[BrowserSession | None, Depends(optional_browser_session)]
CurrentBrowserSession = Annotated[BrowserSession, Depends(required_browser_session)]
CurrentUser = Annotated[User, Depends(current_user)]


def sign_in_url(next_path: str) -> str:
    return "/sign-in?next=" + quote(next_path, safe="")


def signed_in_redirect(settings: Settings, new: NewSession, next_path: str) -> RedirectResponse:
    """The redirect that follows any sign-in: it carries the new session's cookie."""
    response = RedirectResponse(next_path, status_code=303)
    set_cookie(response, settings, SESSION_COOKIE, new.token, max_age=settings.session_max_ttl)
    return response
