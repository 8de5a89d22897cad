"""Who a person is at an upstream provider, and the one-time states of sign-ins in flight."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UUIDPrimaryKey, utcnow


class Identity(UUIDPrimaryKey, Base):
    """One upstream account linked to one Gatehouse user.

    A person is the provider's (issuer, subject) pair, never an email: the email is kept to show
    on the account page and to offer linking, and is refreshed at every sign-in.
    """

    __tablename__ = "identities"
    __table_args__ = (UniqueConstraint("provider", "subject"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))  # the configured name: OIDC_PROVIDERS
    issuer: Mapped[str] = mapped_column(String(512))  # the `iss` the subject was issued under
    subject: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    email_verified: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"Identity(id={self.id}, provider={self.provider!r}, user_id={self.user_id})"


class UsedSignInState(Base):
    """A callback's `state`, kept (as a hash) until it expires so that it is answered once."""

    __tablename__ = "identity_used_states"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)
