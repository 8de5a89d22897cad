"""TOTP (RFC 6238) with the secret sealed by the vault envelope, and its QR code."""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass

import pyotp
from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.mfa.models import TotpFactor
from app.db import rows_affected, utcnow
from app.kit.envelope import Envelope, Sealed, SecretValue

ISSUER = "Gatehouse"
STEP = 30  # RFC 6238 §5.2: 30 seconds is the recommended time-step
DIGITS = 6
# RFC 6238 §5.2: "We RECOMMEND that at most one time step is allowed as the network delay."
LEEWAY_STEPS = 1


def context(user_id: uuid.UUID) -> dict[str, str]:
    """The AAD of a TOTP secret: a row copied to another user does not open."""
    return {"purpose": "totp", "user_id": str(user_id)}


@dataclass(frozen=True)
class Enrolment:
    secret: SecretValue  # base32, shown once as text and as a QR code
    uri: SecretValue  # otpauth://totp/...

    def qr_svg_data_uri(self) -> str:
        """The otpauth URI as an SVG QR code in a data: URI (img-src 'self' data: allows it)."""
        import segno  # lazily, for memory: ~1 MiB of modules, used only at enrolment

        return str(segno.make(self.uri.reveal(), error="m").svg_data_uri(scale=4, border=2))


async def find(session: AsyncSession, user_id: uuid.UUID) -> TotpFactor | None:
    stmt = select(TotpFactor).where(TotpFactor.user_id == user_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def is_enabled(session: AsyncSession, user_id: uuid.UUID) -> bool:
    row = await find(session, user_id)
    return row is not None and row.confirmed_at is not None


async def start(session: AsyncSession, envelope: Envelope, *, user_id: uuid.UUID) -> TotpFactor:
    """A fresh unconfirmed secret for the user (replacing an unconfirmed one, never a live one)."""
    row = await find(session, user_id)
    if row is not None and row.confirmed_at is not None:
        raise ValueError("TOTP is already on")
    secret = pyotp.random_base32()  # 160 bits, RFC 4226 §4 R6's recommended length
    sealed = await envelope.seal(SecretValue(secret), context=context(user_id))
    if row is None:
        row = TotpFactor(user_id=user_id)
        session.add(row)
    row.sealed_secret = sealed.to_bytes()
    row.master_kid = sealed.kid
    row.created_at = utcnow()
    row.last_used_step = None
    await session.flush()
    return row


async def open_secret(envelope: Envelope, row: TotpFactor) -> SecretValue:
    sealed = Sealed.from_bytes(row.sealed_secret)
    return await envelope.open_secret(sealed, context=context(row.user_id))


async def enrolment(envelope: Envelope, row: TotpFactor, *, account: str) -> Enrolment:
    secret = await open_secret(envelope, row)
    uri = pyotp.TOTP(secret.reveal(), digits=DIGITS, interval=STEP).provisioning_uri(
        name=account, issuer_name=ISSUER
    )
    return Enrolment(secret=secret, uri=SecretValue(uri))


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code if not ch.isspace())


def looks_like_totp(code: str) -> bool:
    code = normalise_code(code)
    return len(code) == DIGITS and code.isascii() and code.isdigit()


def matching_step(secret: SecretValue, code: str, *, now: float | None = None) -> int | None:
    """The time-step (within the leeway) whose code is `code`, or None. Constant time per step."""
    code = normalise_code(code)
    if not looks_like_totp(code):
        return None
    otp = pyotp.TOTP(secret.reveal(), digits=DIGITS, interval=STEP)
    current = int((time.time() if now is None else now) // STEP)
    found = None
    for step in range(current - LEEWAY_STEPS, current + LEEWAY_STEPS + 1):
        if hmac.compare_digest(otp.at(step * STEP).encode(), code.encode()):
            found = step
    return found


async def accept_step(session: AsyncSession, *, row: TotpFactor, step: int) -> bool:
    """Record `step` as used; False if it (or a later one) was already accepted.

    RFC 6238 §5.2: "the verifier MUST NOT accept the second attempt of the same OTP after the
    successful validation has been issued for the first OTP". One conditional UPDATE, so two
    concurrent submissions of one code give one success.
    """
    result = await session.execute(
        update(TotpFactor)
        .where(
            TotpFactor.id == row.id,
            or_(TotpFactor.last_used_step.is_(None), TotpFactor.last_used_step < step),
        )
        .values(last_used_step=step)
        .execution_options(synchronize_session=False)
    )
    return rows_affected(result) == 1


async def verify(session: AsyncSession, envelope: Envelope, *, row: TotpFactor, code: str) -> bool:
    """Does `code` check for this factor, and is it the first time it is presented?"""
    step = matching_step(await open_secret(envelope, row), code)
    return step is not None and await accept_step(session, row=row, step=step)


async def confirm(session: AsyncSession, envelope: Envelope, *, row: TotpFactor, code: str) -> bool:
    if row.confirmed_at is not None or not await verify(session, envelope, row=row, code=code):
        return False
    row.confirmed_at = utcnow()
    return True


async def rewrap(session: AsyncSession, envelope: Envelope) -> int:
    """Re-wrap every TOTP secret not under the active master key (for `vault rekey`)."""
    active = envelope.provider.active_kid
    rows = (
        await session.execute(select(TotpFactor).where(TotpFactor.master_kid != active))
    ).scalars()
    count = 0
    for row in rows:
        new = await envelope.rewrap(
            Sealed.from_bytes(row.sealed_secret), context=context(row.user_id)
        )
        row.sealed_secret, row.master_kid = new.to_bytes(), new.kid
        count += 1
    return count


async def remove(session: AsyncSession, *, user_id: uuid.UUID) -> bool:
    result = await session.execute(delete(TotpFactor).where(TotpFactor.user_id == user_id))
    return bool(rows_affected(result))
