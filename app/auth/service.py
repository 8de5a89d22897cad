"""Accounts and browser sessions."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.models import BrowserSession, User
from app.auth.passwords import (
    MAX_PASSWORD_LENGTH,
    hash_password,
    password_problem,
    verify_password,
)
from app.config import Settings
from app.db import rows_affected, utcnow
from app.kit.security import hash_token, new_token
from app.kit.text import text_problem

SESSION_TOKEN_PREFIX = "gh_s_"  # noqa: S105 - a prefix, not a secret
# last_seen_at is written at most this often, not on every page view.
LAST_SEEN_RESOLUTION = timedelta(minutes=1)
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class AccountError(Exception):
    """A user-facing problem with the input; the message says what to fix."""


@dataclass(frozen=True)
class NewSession:
    token: str  # the only time the plaintext exists: it goes into the cookie
    record: BrowserSession


def normalise_email(email: str) -> str:
    return email.strip()


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter your email address."
    if len(email) > 320 or not _EMAIL.match(email) or text_problem(email) is not None:
        return "Enter a valid email address, like name@example.com."
    return None


# Built once (app/oauth/issuance.py's _REFRESH_BY_HASH): every sign-in runs it on the loop.
_USER_BY_EMAIL = select(User).where(func.lower(User.email) == bindparam("email"))


async def find_user_by_email(session: AsyncSession, email: str) -> User | None:
    lowered = normalise_email(email).lower()
    return (await session.execute(_USER_BY_EMAIL, {"email": lowered})).scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    password: str,
    name: str = "",
    ip: str | None = None,
    verified: bool = False,
) -> User:
    email = normalise_email(email)
    name = name.strip()
    problem = email_problem(email) or password_problem(password)
    if problem is None and len(name) > 200:
        problem = "Use at most 200 characters for the name."
    if problem:
        raise AccountError(problem)
    if await find_user_by_email(session, email) is not None:
        raise AccountError("An account with this email already exists. Sign in instead.")
    user = User(email=email, name=name, password_hash=await hash_password(password))
    if verified:  # an administrator vouches for the address (`gatehouse users create`)
        user.email_verified_at = utcnow()
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
        raise AccountError("An account with this email already exists. Sign in instead.") from exc
    audit.record(session, "user.created", user_id=user.id, ip=ip)
    return user


async def authenticate(session: AsyncSession, *, email: str, password: str) -> User | None:
    """The user if the email and password match an active account. Costs the same either way."""
    user = await find_user_by_email(session, email)
    return await check_password(user=user, password=password)


async def check_password(*, user: User | None, password: str) -> User | None:
    """`user` if the password is theirs and the account is active (one argon2 check either way)."""
    # No stored password is longer than the maximum, so a longer one never matches; it is still
    # checked (truncated, against the dummy hash) so that it costs what any other miss costs.
    too_long = len(password) > MAX_PASSWORD_LENGTH
    # An account made through an identity provider has no password (an empty hash).
    stored = user.password_hash if user and user.password_hash and not too_long else None
    ok, new_hash = await verify_password(password[:MAX_PASSWORD_LENGTH], stored)
    if not ok or user is None:
        return None
    if new_hash is not None:
        user.password_hash = new_hash
    if user.disabled_at is not None:
        return None
    return user


async def create_session(
    session: AsyncSession,
    settings: Settings,
    *,
    user: User,
    ip: str | None,
    user_agent: str | None,
) -> NewSession:
    now = utcnow()
    token = new_token(SESSION_TOKEN_PREFIX)
    record = BrowserSession(
        user_id=user.id,
        user=user,
        token_hash=session_hash(settings, token),
        created_at=now,
        last_seen_at=now,
        idle_expires_at=now + timedelta(seconds=settings.session_idle_ttl),
        expires_at=now + timedelta(seconds=settings.session_max_ttl),
        ip=ip,
        user_agent=(user_agent or "")[:512] or None,
    )
    session.add(record)
    await session.flush()
    return NewSession(token=token, record=record)


def session_hash(settings: Settings, token: str) -> str:
    return hash_token(settings.secret_key_bytes, token, purpose="session")


async def session_from_token(
    session: AsyncSession, settings: Settings, token: str | None
) -> BrowserSession | None:
    """The live session for a cookie value, sliding its idle expiry; None if gone or expired."""
    if not token or not token.startswith(SESSION_TOKEN_PREFIX) or len(token) > 128:
        return None
    stmt = select(BrowserSession).where(BrowserSession.token_hash == session_hash(settings, token))
    record = (await session.execute(stmt)).scalar_one_or_none()
    now = utcnow()
    if (
        record is None
        or record.revoked_at is not None
        or record.expires_at <= now
        or record.idle_expires_at <= now
        or record.user.disabled_at is not None
    ):
        return None
    if now - record.last_seen_at >= LAST_SEEN_RESOLUTION:
        record.last_seen_at = now
        record.idle_expires_at = min(
            now + timedelta(seconds=settings.session_idle_ttl), record.expires_at
        )
    return record


async def find_user_session(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID
) -> BrowserSession | None:
    """One of the user's own browser sessions (None for a session that is another user's)."""
    stmt = select(BrowserSession).where(
        BrowserSession.id == session_id, BrowserSession.user_id == user_id
    )
    return (await session.execute(stmt)).scalar_one_or_none()


def revoke_session(record: BrowserSession) -> None:
    """Mark a session (a row of the caller's unit of work) revoked; committed with it."""
    if record.revoked_at is None:
        record.revoked_at = utcnow()


async def revoke_user_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, keep: uuid.UUID | None = None
) -> int:
    stmt = (
        update(BrowserSession)
        .where(BrowserSession.user_id == user_id, BrowserSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    if keep is not None:
        stmt = stmt.where(BrowserSession.id != keep)
    result = await session.execute(stmt)
    return rows_affected(result)


async def active_sessions(session: AsyncSession, *, user_id: uuid.UUID) -> list[BrowserSession]:
    now = utcnow()
    stmt = (
        select(BrowserSession)
        .where(
            BrowserSession.user_id == user_id,
            BrowserSession.revoked_at.is_(None),
            BrowserSession.expires_at > now,
            BrowserSession.idle_expires_at > now,
        )
        .order_by(BrowserSession.last_seen_at.desc())
    )
    return list((await session.execute(stmt)).scalars())


async def change_password(
    session: AsyncSession,
    *,
    user: User,
    current_password: str,
    new_password: str,
    keep_session: uuid.UUID | None,
    ip: str | None,
) -> None:
    too_long = len(current_password) > MAX_PASSWORD_LENGTH
    stored = None if too_long else user.password_hash
    ok, _ = await verify_password(current_password[:MAX_PASSWORD_LENGTH], stored)
    if not ok:
        raise AccountError("The current password is not right.")
    problem = password_problem(new_password)
    if problem:
        raise AccountError(problem)
    user.password_hash = await hash_password(new_password)
    await revoke_user_sessions(session, user_id=user.id, keep=keep_session)
    audit.record(session, "password.changed", user_id=user.id, ip=ip)


async def set_disabled(session: AsyncSession, *, user: User, disabled: bool) -> None:
    user.disabled_at = utcnow() if disabled else None
    if disabled:
        await revoke_user_sessions(session, user_id=user.id)
    audit.record(session, "user.disabled" if disabled else "user.enabled", user_id=user.id)


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.created_at))).scalars())
