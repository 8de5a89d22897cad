"""Consent: what a person has approved, and the ConsentExtension protocol other features implement
to add a step to the consent page (the connectors collect upstream credentials through it).

The authorization server defines the protocol and never imports its implementations; the app
hands them in (see app/oauth/deps.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.oauth.models import OAuthConsent
from app.oauth.redirect_uris import loopback_without_port
from app.oauth.scopes import format_scopes


def consent_key(redirect_uri: str) -> str:
    """The redirect URI as consent remembers it: a loopback URI without its port.

    Native clients pick a new ephemeral port for each connection (RFC 8252 §7.3); the person
    approved the app on their device, not one port of it.
    """
    return loopback_without_port(redirect_uri)


async def _remembered(
    session: AsyncSession, *, user_id: uuid.UUID, client_pk: uuid.UUID, redirect_uri: str
) -> OAuthConsent | None:
    stmt = select(OAuthConsent).where(
        OAuthConsent.user_id == user_id,
        OAuthConsent.client_pk == client_pk,
        OAuthConsent.redirect_uri == consent_key(redirect_uri),
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def consent_covers(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    client_pk: uuid.UUID,
    redirect_uri: str,
    scopes: Sequence[str],
) -> bool:
    consent = await _remembered(
        session, user_id=user_id, client_pk=client_pk, redirect_uri=redirect_uri
    )
    return consent is not None and set(scopes) <= set(consent.scopes.split())


async def remember_consent(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    client_pk: uuid.UUID,
    redirect_uri: str,
    scopes: Sequence[str],
) -> None:
    consent = await _remembered(
        session, user_id=user_id, client_pk=client_pk, redirect_uri=redirect_uri
    )
    if consent is None:
        session.add(
            OAuthConsent(
                user_id=user_id,
                client_pk=client_pk,
                redirect_uri=consent_key(redirect_uri),
                scopes=format_scopes(scopes),
            )
        )
    else:
        consent.scopes = format_scopes(scopes)


async def forget_consent(
    session: AsyncSession, *, user_id: uuid.UUID, client_pk: uuid.UUID
) -> None:
    await session.execute(
        delete(OAuthConsent).where(
            OAuthConsent.user_id == user_id, OAuthConsent.client_pk == client_pk
        )
    )


# -- extensions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConsentField:
    """One optional secret the consent page asks for, sent back as `credential_<name>`."""

    name: str
    label: str  # the upstream, e.g. "GitHub"
    input_label: str  # the secret, e.g. "personal access token"
    help_text: str
    help_url: str


class ConsentExtension(Protocol):
    """A step another feature adds to the consent page."""

    async def fields(self, session: AsyncSession, *, user_id: uuid.UUID) -> Sequence[ConsentField]:
        """What to ask this person for on the consent page (nothing if they have it already)."""
        ...

    async def accept(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        values: Mapping[str, str],
        ip: str | None,
    ) -> dict[str, str]:
        """Take the values given for these fields; returns a problem per field name refused."""
        ...


@dataclass(frozen=True)
class ApprovalBlock:
    """Why the person may not approve a client yet, and where they can put it right."""

    reason: str
    fix_url: str  # one of our own pages
    fix_label: str


class ApprovalGate(Protocol):
    """A rule another feature sets on approving a client (a verified email, a second factor)."""

    async def blocker(self, session: AsyncSession, *, user_id: uuid.UUID) -> ApprovalBlock | None:
        """Why this person may not approve now, or None."""
        ...


async def approval_block(
    session: AsyncSession, gates: Iterable[ApprovalGate], *, user_id: uuid.UUID
) -> ApprovalBlock | None:
    """The first gate that holds the person back, or None when every gate lets them through."""
    for gate in gates:
        block = await gate.blocker(session, user_id=user_id)
        if block is not None:
            return block
    return None


async def consent_fields(
    session: AsyncSession, extensions: Iterable[ConsentExtension], *, user_id: uuid.UUID
) -> list[ConsentField]:
    return [f for ext in extensions for f in await ext.fields(session, user_id=user_id)]


async def accept_extensions(
    session: AsyncSession,
    extensions: Iterable[ConsentExtension],
    *,
    user_id: uuid.UUID,
    form: Mapping[str, str],
    ip: str | None,
    reload: Iterable[object],
) -> dict[str, str]:
    """Run every extension's step before anything is issued.

    Any problem rolls the whole transaction back, so a refused approval keeps nothing; the
    objects in `reload` (those the consent page reads again) are reloaded, since the rollback
    expired them and an expired attribute read later would load without await (MissingGreenlet).
    """
    problems: dict[str, str] = {}
    for extension in extensions:
        problems |= await extension.accept(session, user_id=user_id, values=form, ip=ip)
    if problems:
        await session.rollback()
        for row in reload:
            if row in session:
                await session.refresh(row)
    return problems
