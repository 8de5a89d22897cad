"""Whose Gatehouse account an upstream person is: the identity rules.

- A person is the provider's (issuer, subject) pair; an email alone never identifies anyone.
- A first sign-in makes a new account when sign-up is open or the email's domain is allowed
  for that provider, and only for an email the provider says is verified.
- An existing account with the same email is linked only when the provider verified the email
  AND the person proves the account is theirs (its password, or being signed in to it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.auth.models import User
from app.auth.service import find_user_by_email
from app.db import rows_affected, utcnow
from app.identity.models import Identity, UsedSignInState
from app.identity.settings import ProviderConfig
from app.identity.upstream import UpstreamPerson

# Expired used states are deleted a bounded batch at a time, when new ones are written, and all
# at once by the periodic purge.
USED_STATE_PURGE_BATCH = 500
# A used state's row outlives its cookie: the cookie expires FLOW_TTL after the sign-in began, the
# row FLOW_TTL after the callback. The margin is for replicas whose clocks differ: a row is kept
# until no replica could still read the cookie that carried its state.
USED_STATE_MARGIN = timedelta(minutes=5)


@dataclass(frozen=True)
class SignIn:
    user: User
    created: bool = False
    linked: bool = False


@dataclass(frozen=True)
class ConfirmPassword:
    """An account with this verified email exists: its password proves it is theirs."""

    user: User


@dataclass(frozen=True)
class Refusal:
    reason: str  # a short code for the audit log and the span
    message: str  # what the person reads


Resolution = SignIn | ConfirmPassword | Refusal


async def consume_state(session: AsyncSession, *, state_hash: str, ttl: int) -> bool:
    """Record a callback's state as used; False if it was used before (a replay)."""
    now = utcnow()
    expired = (
        select(UsedSignInState.state_hash)
        .where(UsedSignInState.expires_at < now - USED_STATE_MARGIN)
        .limit(USED_STATE_PURGE_BATCH)
        .scalar_subquery()
    )
    await session.execute(delete(UsedSignInState).where(UsedSignInState.state_hash.in_(expired)))
    try:
        async with session.begin_nested():
            session.add(
                UsedSignInState(state_hash=state_hash, expires_at=now + timedelta(seconds=ttl))
            )
    except IntegrityError:
        return False
    return True


async def purge_used_states(session: AsyncSession) -> int:
    """Delete used states whose cookies can no longer be presented (the periodic purge)."""
    stale = UsedSignInState.expires_at < utcnow() - USED_STATE_MARGIN
    return rows_affected(await session.execute(delete(UsedSignInState).where(stale)))


async def find_identity(session: AsyncSession, *, provider: str, subject: str) -> Identity | None:
    stmt = select(Identity).where(Identity.provider == provider, Identity.subject == subject)
    return (await session.execute(stmt)).scalar_one_or_none()


async def resolve(
    session: AsyncSession,
    *,
    config: ProviderConfig,
    person: UpstreamPerson,
    connect_to: User | None,
    allow_signup: bool,
) -> Resolution:
    """What this sign-in means: whose account, a new one, a password to confirm, or no."""
    identity = await find_identity(session, provider=config.name, subject=person.subject)
    if identity is not None:
        return await _known(session, identity=identity, config=config, person=person, to=connect_to)
    if connect_to is not None:  # signed in and asked to connect: being signed in is the proof
        try:
            async with session.begin_nested():
                await link(session, user=connect_to, config=config, person=person)
        except IntegrityError:
            return Refusal("conflict", "Another sign-in just linked this account. Try again.")
        return SignIn(connect_to, linked=True)
    existing = await find_user_by_email(session, person.email) if person.email else None
    if existing is not None:
        return _existing_account(existing, config, person)
    if person.email is None:
        return Refusal(
            "no_email",
            f"{config.label} did not tell us your email address, so no account can "
            "be made for you. Ask your administrator to create one.",
        )
    if not person.email_verified:
        return Refusal(
            "email_unverified",
            f"{config.label} has not verified your email address "
            f"{person.email}. Verify it with {config.label}, then try again.",
        )
    if not (allow_signup or config.allows_domain(person.email)):
        domain = person.email.rpartition("@")[2]
        return Refusal(
            "domain_not_allowed",
            f"There is no account here for {person.email}, and accounts "
            f"for {domain} are not made automatically. Ask the administrator of this Gatehouse "
            "(whoever gave you its address) to create an account for you or to allow your domain.",
        )
    try:
        async with session.begin_nested():  # a concurrent first sign-in may win the race
            user = User(email=person.email, name=person.name, password_hash="")
            session.add(user)
            await session.flush()
            await link(session, user=user, config=config, person=person)
    except IntegrityError:
        return Refusal("conflict", "Another sign-in just made this account. Try again.")
    audit.record(session, "user.created", user_id=user.id, method=f"provider:{config.name}")
    return SignIn(user, created=True)


async def _known(
    session: AsyncSession,
    *,
    identity: Identity,
    config: ProviderConfig,
    person: UpstreamPerson,
    to: User | None,
) -> Resolution:
    if identity.issuer != person.issuer:
        # The same subject from another issuer is another person (the setting changed).
        return Refusal(
            "issuer_changed",
            f"This {config.label} account was linked under another issuer. "
            "Ask your administrator to check the provider's settings.",
        )
    if to is not None and identity.user_id != to.id:
        return Refusal(
            "linked_elsewhere",
            f"This {config.label} account is already linked to another "
            "Gatehouse account. Disconnect it there first.",
        )
    user = await session.get(User, identity.user_id)
    if user is None or user.disabled_at is not None:
        return Refusal("disabled", "This account is disabled. Ask your administrator.")
    identity.email, identity.email_verified = person.email, person.email_verified
    identity.last_used_at = utcnow()
    return SignIn(user)


def _existing_account(user: User, config: ProviderConfig, person: UpstreamPerson) -> Resolution:
    if user.disabled_at is not None:
        return Refusal("disabled", "This account is disabled. Ask your administrator.")
    if not person.email_verified:
        return Refusal(
            "link_unverified_email",
            f"An account with the email {person.email} exists, but "
            f"{config.label} has not verified that address, so it cannot be linked. Sign in "
            f"with your password, then connect {config.label} from your account page.",
        )
    if not user.password_hash:
        return Refusal(
            "link_needs_other_provider",
            f"An account with the email {person.email} exists "
            f"and signs in through another provider. Sign in with it, then connect "
            f"{config.label} from your account page.",
        )
    return ConfirmPassword(user)


async def link(
    session: AsyncSession, *, user: User, config: ProviderConfig, person: UpstreamPerson
) -> Identity:
    identity = Identity(
        user_id=user.id,
        provider=config.name,
        issuer=person.issuer,
        subject=person.subject,
        email=person.email,
        email_verified=person.email_verified,
        last_used_at=utcnow(),
    )
    session.add(identity)
    await session.flush()
    audit.record(session, "identity.linked", user_id=user.id, provider=config.name)
    return identity


async def link_once(
    session: AsyncSession, *, user: User, config: ProviderConfig, person: UpstreamPerson
) -> bool:
    """Link `person` to `user` unless it is linked already; True when it is now `user`'s.

    Two submits of one form can both find no identity: the one whose insert loses the race
    reads the identity the other made (False when that is another account's), never a 500.
    """
    identity = await find_identity(session, provider=config.name, subject=person.subject)
    if identity is None:
        try:
            async with session.begin_nested():
                await link(session, user=user, config=config, person=person)
            return True
        except IntegrityError:
            identity = await find_identity(session, provider=config.name, subject=person.subject)
    return identity is not None and identity.user_id == user.id


async def identities_of(session: AsyncSession, *, user_id: uuid.UUID) -> list[Identity]:
    stmt = select(Identity).where(Identity.user_id == user_id).order_by(Identity.created_at)
    return list((await session.execute(stmt)).scalars())


async def can_disconnect(session: AsyncSession, *, user: User) -> bool:
    """Whether one identity can go without leaving the account no way to sign in."""
    if user.password_hash:
        return True
    stmt = select(func.count()).select_from(Identity).where(Identity.user_id == user.id)
    return int((await session.execute(stmt)).scalar_one()) > 1


async def unlink_identities(session: AsyncSession, *, user_id: uuid.UUID, ip: str | None) -> int:
    """Remove every provider identity of an account (a password reset takes the account back)."""
    result = await session.execute(delete(Identity).where(Identity.user_id == user_id))
    count = rows_affected(result)
    if count:
        audit.record(
            session, "identity.unlinked", user_id=user_id, ip=ip, provider="*", count=count
        )
    return count


async def disconnect(
    session: AsyncSession, *, user: User, identity_id: uuid.UUID, ip: str | None
) -> str | None:
    """Remove one of the user's identities; a message when that is not allowed."""
    stmt = select(Identity).where(Identity.id == identity_id, Identity.user_id == user.id)
    identity = (await session.execute(stmt)).scalar_one_or_none()
    if identity is None:
        return "That sign-in method is not linked to your account."
    # Two Disconnects at once must not both see a second way in: hold the account's row.
    await session.execute(select(User.id).where(User.id == user.id).with_for_update())
    if not await can_disconnect(session, user=user):
        return "This is the only way to sign in to your account, so it cannot be disconnected."
    await session.delete(identity)
    audit.record(session, "identity.unlinked", user_id=user.id, ip=ip, provider=identity.provider)
    return None
