"""Who is signed in: named dependencies for the pages."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from app.auth.models import BrowserSession, User
from app.auth.service import session_from_token
from app.db import SessionDep
from app.kit.web import SettingsDep, cookie_name

SESSION_COOKIE = "gh_session"


class SignInRequired(Exception):
    """Raised by pages that need a signed-in user; answered with a redirect to /sign-in."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


async def optional_browser_session(
    request: Request, session: SessionDep, settings: SettingsDep
) -> BrowserSession | None:
    token = request.cookies.get(cookie_name(settings, SESSION_COOKIE))
    record = await session_from_token(session, settings, token)
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
