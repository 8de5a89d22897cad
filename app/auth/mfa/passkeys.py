"""Passkeys (WebAuthn Level 2) through py_webauthn: register, list, remove, authenticate.

The relying party is PUBLIC_URL: its host is the RP ID and its origin the only origin accepted.
Challenges are random 256-bit values kept server-side as hashes (challenges.py), single-use and
valid for CHALLENGE_TTL seconds.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa import challenges
from app.auth.mfa.models import WebAuthnCredential
from app.auth.models import User
from app.config import Settings
from app.db import rows_affected, utcnow

if TYPE_CHECKING:
    from webauthn.helpers.structs import PublicKeyCredentialDescriptor

# py_webauthn is imported inside the functions that call it, for memory: with its pyasn1,
# pyOpenSSL and cbor2 it is ~5 MiB of modules, which a process that serves no passkey
# ceremony (an /mcp worker, most of the time) would keep resident for nothing.

CHALLENGE_TTL = 300
TIMEOUT_MS = 120_000
MAX_CREDENTIAL_JSON = 16 * 1024
MAX_PASSKEYS = 20
REGISTER = "passkey.register"
SIGN_IN = "passkey.sign-in"  # first factor: any user's discoverable passkey
SECOND_FACTOR = "passkey.second-factor"  # one known user's passkeys


class PasskeyError(Exception):
    """The browser's answer does not check; the message is safe to show."""


UNAVAILABLE = (
    "Passkeys need this service on a host name, not an IP address: set PUBLIC_URL to "
    "http://localhost:PORT (development) or https://your.host."
)


@dataclass(frozen=True)
class RelyingParty:
    id: str
    origin: str
    name: str = "Gatehouse"

    @property
    def available(self) -> bool:
        """Browsers refuse an IP address as RP ID: passkeys need PUBLIC_URL on a host name."""
        try:
            ipaddress.ip_address(self.id.strip("[]"))
        except ValueError:
            return bool(self.id)
        return False


def relying_party(settings: Settings) -> RelyingParty:
    """WebAuthn §5.1.4.1 / §13.4.9: the RP ID is a registrable domain of the origin, so the
    host of PUBLIC_URL. An IP address is never a valid RP ID: serve on a name (localhost)."""
    parts = urlsplit(settings.public_url)
    return RelyingParty(id=parts.hostname or "", origin=f"{parts.scheme}://{parts.netloc}")


async def for_user(session: AsyncSession, user_id: uuid.UUID) -> list[WebAuthnCredential]:
    stmt = (
        select(WebAuthnCredential)
        .where(WebAuthnCredential.user_id == user_id)
        .order_by(WebAuthnCredential.created_at)
    )
    return list((await session.execute(stmt)).scalars())


def _descriptors(rows: list[WebAuthnCredential]) -> list[PublicKeyCredentialDescriptor]:
    from webauthn.helpers.structs import AuthenticatorTransport, PublicKeyCredentialDescriptor

    known = {t.value for t in AuthenticatorTransport}
    return [
        PublicKeyCredentialDescriptor(
            id=row.credential_id,
            transports=[AuthenticatorTransport(t) for t in row.transports.split(",") if t in known],
        )
        for row in rows
    ]


async def _new_challenge(
    session: AsyncSession, settings: Settings, *, purpose: str, user_id: uuid.UUID | None
) -> bytes:
    from webauthn.helpers import bytes_to_base64url

    challenge = secrets.token_bytes(32)
    await challenges.issue(
        session,
        settings,
        value=bytes_to_base64url(challenge),
        purpose=purpose,
        user_id=user_id,
        ttl=CHALLENGE_TTL,
    )
    return challenge


async def registration_options(session: AsyncSession, settings: Settings, *, user: User) -> str:
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    rp = relying_party(settings)
    challenge = await _new_challenge(session, settings, purpose=REGISTER, user_id=user.id)
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=user.id.bytes,  # the user handle: no personal data (WebAuthn §14.6.1)
        user_name=user.email,
        user_display_name=user.name or user.email,
        challenge=challenge,
        timeout=TIMEOUT_MS,
        # Discoverable, so it can sign in without an email address first.
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(await for_user(session, user.id)),
    )
    return str(options_to_json(options))


def _challenge_of(credential_json: str) -> str:
    """The challenge the browser signed, read from clientDataJSON (checked again by verify)."""
    from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_client_data_json
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        data = json.loads(credential_json)
        client_data = data["response"]["clientDataJSON"]

        parsed = parse_client_data_json(base64url_to_bytes(client_data))
    except (ValueError, KeyError, TypeError, WebAuthnException) as exc:
        raise PasskeyError("The passkey answer was not understood. Try again.") from exc
    return bytes_to_base64url(parsed.challenge)


async def _consume(
    session: AsyncSession,
    settings: Settings,
    credential_json: str,
    *,
    purpose: str,
    user_id: uuid.UUID | None,
) -> bytes:
    from webauthn.helpers import base64url_to_bytes

    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise PasskeyError("The passkey answer was missing. Try again.")
    challenge = _challenge_of(credential_json)
    if not await challenges.consume(
        session, settings, value=challenge, purpose=purpose, user_id=user_id
    ):
        raise PasskeyError("That passkey request expired or was already used. Try again.")

    return base64url_to_bytes(challenge)


async def register(
    session: AsyncSession, settings: Settings, *, user: User, credential_json: str, name: str
) -> WebAuthnCredential:
    from webauthn import verify_registration_response
    from webauthn.helpers.exceptions import WebAuthnException

    name = name.strip()[:100] or "Passkey"
    if len(await for_user(session, user.id)) >= MAX_PASSKEYS:
        raise PasskeyError(f"You already have {MAX_PASSKEYS} passkeys. Remove one first.")
    challenge = await _consume(
        session, settings, credential_json, purpose=REGISTER, user_id=user.id
    )
    rp = relying_party(settings)
    try:
        verified = verify_registration_response(
            credential=credential_json,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
        )
        transports = json.loads(credential_json)["response"].get("transports") or []
    except (WebAuthnException, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise PasskeyError("The passkey could not be verified. Try again.") from exc
    row = WebAuthnCredential(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=",".join(str(t) for t in transports if isinstance(t, str))[:200],
        name=name,
    )
    session.add(row)
    await session.flush()
    return row


async def authentication_options(
    session: AsyncSession, settings: Settings, *, user_id: uuid.UUID | None
) -> str:
    """Options for a sign-in (user_id None: any discoverable passkey) or a second factor."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    rp = relying_party(settings)
    purpose = SIGN_IN if user_id is None else SECOND_FACTOR
    allow = _descriptors(await for_user(session, user_id)) if user_id is not None else []
    options = generate_authentication_options(
        rp_id=rp.id,
        challenge=await _new_challenge(session, settings, purpose=purpose, user_id=user_id),
        timeout=TIMEOUT_MS,
        allow_credentials=allow,
        # As a first factor the passkey is both factors at once: it must verify the person.
        user_verification=UserVerificationRequirement.REQUIRED
        if user_id is None
        else UserVerificationRequirement.PREFERRED,
    )
    return str(options_to_json(options))


async def authenticate(
    session: AsyncSession,
    settings: Settings,
    *,
    credential_json: str,
    user_id: uuid.UUID | None,
) -> WebAuthnCredential:
    """The passkey that signed this challenge, its counter advanced; PasskeyError otherwise."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.exceptions import WebAuthnException

    purpose = SIGN_IN if user_id is None else SECOND_FACTOR
    challenge = await _consume(session, settings, credential_json, purpose=purpose, user_id=user_id)
    try:
        raw_id = json.loads(credential_json)["rawId"]

        credential_id = base64url_to_bytes(raw_id)
    except (ValueError, KeyError, TypeError) as exc:
        raise PasskeyError("The passkey answer was not understood. Try again.") from exc
    row = (
        await session.execute(
            select(WebAuthnCredential).where(WebAuthnCredential.credential_id == credential_id)
        )
    ).scalar_one_or_none()
    if row is None or (user_id is not None and row.user_id != user_id):
        raise PasskeyError("That passkey is not registered here.")
    rp = relying_party(settings)
    try:
        verified = verify_authentication_response(
            credential=credential_json,
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=row.public_key,
            # WebAuthn §7.2 step 21: a counter that did not grow signals a cloned authenticator.
            credential_current_sign_count=row.sign_count,
            require_user_verification=user_id is None,
        )
    except WebAuthnException as exc:
        raise PasskeyError("The passkey could not be verified. Try again.") from exc
    await _advance(session, row=row, new_count=verified.new_sign_count)
    return row


async def _advance(session: AsyncSession, *, row: WebAuthnCredential, new_count: int) -> None:
    """Store the new counter, conditional on the old one: two concurrent uses of one counter
    value cannot both pass."""
    result = await session.execute(
        update(WebAuthnCredential)
        .where(WebAuthnCredential.id == row.id, WebAuthnCredential.sign_count == row.sign_count)
        .values(sign_count=new_count, last_used_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    if rows_affected(result) != 1:
        raise PasskeyError("The passkey could not be verified. Try again.")


async def remove(session: AsyncSession, *, user_id: uuid.UUID, passkey_id: uuid.UUID) -> bool:
    result = await session.execute(
        delete(WebAuthnCredential).where(
            WebAuthnCredential.id == passkey_id, WebAuthnCredential.user_id == user_id
        )
    )
    return bool(rows_affected(result))


async def remove_all(session: AsyncSession, *, user_id: uuid.UUID) -> int:
    result = await session.execute(
        delete(WebAuthnCredential).where(WebAuthnCredential.user_id == user_id)
    )
    return rows_affected(result)
