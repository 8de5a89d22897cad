"""Second-factor rows. Nothing here is usable if the database leaks: the TOTP secret is sealed
by the vault envelope, recovery codes and challenges are HMAC hashes, passkeys are public keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UUIDPrimaryKey, utcnow


class TotpFactor(UUIDPrimaryKey, Base):
    __tablename__ = "totp_factors"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    sealed_secret: Mapped[bytes] = mapped_column(LargeBinary)  # app.kit.envelope.Sealed bytes
    master_kid: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(default=None)
    # RFC 6238 §5.2: a verifier MUST NOT accept the second attempt of the same OTP; the
    # time-step of the last accepted code, so any code at or before it is refused.
    last_used_step: Mapped[int | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"TotpFactor(user_id={self.user_id}, confirmed={self.confirmed_at is not None})"


class RecoveryCode(UUIDPrimaryKey, Base):
    __tablename__ = "recovery_codes"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"RecoveryCode(user_id={self.user_id}, used={self.used_at is not None})"


class WebAuthnCredential(UUIDPrimaryKey, Base):
    __tablename__ = "webauthn_credentials"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)  # COSE_Key
    sign_count: Mapped[int] = mapped_column(Integer, default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")  # comma-separated
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"WebAuthnCredential(id={self.id}, user_id={self.user_id})"


class MfaChallenge(UUIDPrimaryKey, Base):
    """A single-use, short-lived server value: a WebAuthn challenge or a pending sign-in.

    Only its hash is stored; consuming it is one `UPDATE … WHERE used_at IS NULL`, so it is
    single-use across replicas.
    """

    __tablename__ = "webauthn_challenges"

    challenge_hash: Mapped[str] = mapped_column(String(64), unique=True)
    purpose: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True, default=None
    )
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"MfaChallenge(purpose={self.purpose!r}, user_id={self.user_id})"
