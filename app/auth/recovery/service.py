"""Account recovery's work: verify an address, reset a password, change the address.

Every link is single-use (tokens.consume); every change is audited; mail goes out only once the
transaction that made its link has committed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import audit
from app.auth import service as accounts
from app.auth.models import User
from app.auth.passwords import MAX_PASSWORD_LENGTH, hash_password, password_problem
from app.auth.passwords import verify_password as check_password
from app.auth.recovery import mails, tokens
from app.auth.recovery.models import AccountToken
from app.config import Settings
from app.db import utcnow
from app.identity.service import unlink_identities
from app.mail.outbox import Outbox
from app.oauth.user_grants import revoke_user_grants


class LinkProblem(Exception):
    """The link was already used, has expired, or never existed."""


class AccountTaken(LinkProblem):
    """Another account took the new address between the request and the link."""


@dataclass(frozen=True)
class Proven:
    """What a used /verify-email link proved."""

    user: User
    changed_email: bool


# -- email verification ---------------------------------------------------------------------------


async def send_verification(
    session: AsyncSession, settings: Settings, outbox: Outbox, *, user: User
) -> None:
    token = await tokens.issue(session, settings, user_id=user.id, purpose="verify_email")
    outbox.send_after_commit(session, mails.verification(settings, user, token))


async def address_link(
    session: AsyncSession, settings: Settings, *, token: str
) -> AccountToken | None:
    """The live verification or email-change link for `token`, not used yet."""
    return await tokens.peek(
        session, settings, token=token, purposes=("verify_email", "change_email")
    )


async def use_address_link(
    session: AsyncSession, settings: Settings, *, token: str, ip: str | None
) -> Proven:
    """Use a /verify-email link: mark the address verified, or switch to the new address."""
    row = await address_link(session, settings, token=token)
    if row is None:
        raise LinkProblem()
    purpose: tokens.Purpose = "change_email" if row.purpose == "change_email" else "verify_email"
    used = await tokens.consume(session, settings, token=token, purpose=purpose)
    user = await session.get(User, used.user_id) if used else None
    if used is None or user is None or user.disabled_at is not None:
        raise LinkProblem()
    now = utcnow()
    if used.purpose == "verify_email":
        if user.email_verified_at is None:
            user.email_verified_at = now
            audit.record(session, "email.verified", user_id=user.id, ip=ip)
        return Proven(user=user, changed_email=False)
    return await _switch_address(session, user=user, new_email=used.new_email or "", ip=ip)


async def _switch_address(
    session: AsyncSession, *, user: User, new_email: str, ip: str | None
) -> Proven:
    if await accounts.find_user_by_email(session, new_email) is not None:
        raise AccountTaken()
    user.email = new_email
    user.email_verified_at = utcnow()  # the link reached the new address: it is proven
    try:
        await session.flush()
    except IntegrityError as exc:  # taken by a concurrent sign-up or change
        raise AccountTaken() from exc
    # Links sent to the old address are moot now.
    await tokens.retire(
        session, user_id=user.id, purposes=("verify_email", "reset_password", "change_email")
    )
    audit.record(session, "email.changed", user_id=user.id, ip=ip)
    return Proven(user=user, changed_email=True)


# -- password reset -------------------------------------------------------------------------------


async def send_reset_link(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    outbox: Outbox,
    *,
    email: str,
    ip: str | None,
) -> None:
    """Mail a reset link if `email` names an active account; otherwise do nothing.

    Runs on an outbox worker, not in the request: the page a person sees is the same, and costs
    the same, whether or not the account exists (no enumeration by content or timing).
    """
    async with sessionmaker() as session, session.begin():
        user = await accounts.find_user_by_email(session, email)
        if user is None or user.disabled_at is not None:
            return
        token = await tokens.issue(session, settings, user_id=user.id, purpose="reset_password")
        audit.record(session, "password.reset_requested", user_id=user.id, ip=ip)
        outbox.send_after_commit(session, mails.reset_link(settings, user, token))


RESET_PURPOSES: tuple[tokens.Purpose, ...] = ("reset_password", "admin_reset_password")

# The reset links whose new password this process is hashing now. A single-use link buys one
# hash: without this, every POST sent with one live link while its first hash runs would queue
# a hash too (up to the hash pool's whole queue, which sign-in shares), each only to find the
# link spent. The hash runs before the link is spent, outside any transaction, so that no row
# (and on SQLite no database) stays locked for the length of an argon2 hash.
_hashing: set[object] = set()


@contextmanager
def _one_hash_per_link(link_id: object) -> Iterator[None]:
    """Hold the link's place while its password hashes; a second use meanwhile is LinkProblem
    (the page says the link was used, which it is about to be)."""
    if link_id in _hashing:
        raise LinkProblem()
    _hashing.add(link_id)
    try:
        yield
    finally:
        _hashing.discard(link_id)


async def admin_reset_link(session: AsyncSession, settings: Settings, *, email: str) -> str | None:
    """A one-time reset link for an administrator to hand over (`gatehouse users
    reset-password`); None if there is no such account."""
    user = await accounts.find_user_by_email(session, email)
    if user is None:
        return None
    token = await tokens.issue(session, settings, user_id=user.id, purpose="admin_reset_password")
    audit.record(session, "password.reset_link_issued", user_id=user.id, by="cli")
    return tokens.link(settings, mails.RESET_PATH, token)


async def _spend_reset_link(
    session: AsyncSession, settings: Settings, *, token: str, new_password: str
) -> tuple[User, str, tokens.Purpose]:
    """The account a reset link is for, the new password's hash and the link's purpose, with the
    link spent. AccountError for an unacceptable password (the link stays usable), LinkProblem
    for a used, expired or unknown link or a disabled account."""
    live = await tokens.peek(session, settings, token=token, purposes=RESET_PURPOSES)
    if live is None:
        raise LinkProblem()
    purpose: tokens.Purpose = (
        "reset_password" if live.purpose == "reset_password" else ("admin_reset_password")
    )
    problem = password_problem(new_password)
    if problem:
        raise accounts.AccountError(problem)
    with _one_hash_per_link(live.id):
        password_hash = await hash_password(new_password)  # before the row lock, not under it
        used = await tokens.consume(session, settings, token=token, purpose=purpose)
    user = await session.get(User, used.user_id) if used else None
    if user is None or user.disabled_at is not None:
        raise LinkProblem()
    return user, password_hash, purpose


async def reset_password(
    session: AsyncSession,
    settings: Settings,
    outbox: Outbox,
    *,
    token: str,
    new_password: str,
    disconnect_apps: bool,
    ip: str | None,
) -> User:
    """Set a new password through a reset link; every session ends, apps optionally too.

    Raises AccountError for an unacceptable password (the link stays usable) and LinkProblem for
    a used, expired or unknown link.
    """
    user, password_hash, purpose = await _spend_reset_link(
        session, settings, token=token, new_password=new_password
    )
    now = utcnow()
    user.password_hash = password_hash
    # An account nobody had proved the address of may have been made by someone else (an
    # attacker who signed up with the owner's address, then linked their own provider or
    # connected apps): the owner taking it back through the mailbox removes all of that.
    squatted = user.email_verified_at is None
    if squatted and purpose == "reset_password":
        user.email_verified_at = now  # the mailed link reached the address
    await tokens.retire(session, user_id=user.id, purposes=RESET_PURPOSES)
    sessions = await accounts.revoke_user_sessions(session, user_id=user.id)
    # Every other way in goes too: a provider identity linked by whoever held the account.
    identities = await unlink_identities(session, user_id=user.id, ip=ip)
    disconnect_apps = disconnect_apps or squatted
    apps = 0
    if disconnect_apps:
        apps = await revoke_user_grants(session, user_id=user.id, reason="password_reset", ip=ip)
    audit.record(
        session,
        "password.reset",
        user_id=user.id,
        ip=ip,
        sessions=sessions,
        disconnected_apps=disconnect_apps,
        grants=apps,
        identities=identities,
    )
    notice = mails.password_was_reset(
        settings, user, at=now, disconnected=disconnect_apps, unlinked=identities
    )
    outbox.send_after_commit(session, notice)
    return user


# -- email change ---------------------------------------------------------------------------------


async def request_email_change(
    session: AsyncSession,
    settings: Settings,
    outbox: Outbox,
    *,
    user: User,
    current_password: str,
    new_email: str,
    ip: str | None,
) -> str:
    """Send a confirmation link to the new address and a notice to the old one; the address
    changes only when the link is used. Returns the new address. Raises AccountError."""
    too_long = len(current_password) > MAX_PASSWORD_LENGTH
    ok, _ = await check_password(
        current_password[:MAX_PASSWORD_LENGTH],
        None if too_long or not user.password_hash else user.password_hash,
    )
    if not ok:
        raise accounts.AccountError("The current password is not right.")
    new_email = accounts.normalise_email(new_email)
    problem = accounts.email_problem(new_email)
    if problem:
        raise accounts.AccountError(problem)
    if new_email.lower() == user.email.lower():
        raise accounts.AccountError("That is already your address.")
    if await accounts.find_user_by_email(session, new_email) is not None:
        raise accounts.AccountError("Another account uses that address.")
    # One pending change at a time: a newer request replaces the older link.
    await tokens.retire(session, user_id=user.id, purposes=("change_email",))
    token = await tokens.issue(
        session, settings, user_id=user.id, purpose="change_email", new_email=new_email
    )
    audit.record(session, "email.change_requested", user_id=user.id, ip=ip)
    outbox.send_after_commit(session, mails.email_change_link(settings, user, new_email, token))
    notice = mails.email_change_notice(settings, user, new_email, utcnow())
    outbox.send_after_commit(session, notice)
    return new_email
