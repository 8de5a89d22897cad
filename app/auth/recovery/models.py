"""Single-use links sent by email: verification, password reset, email change."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UUIDPrimaryKey, utcnow


class AccountToken(UUIDPrimaryKey, Base):
    __tablename__ = "account_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(
        String(32)
    )  # verify_email, (admin_)reset_password, change_email
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # HMAC; never the token
    new_email: Mapped[str | None] = mapped_column(String(320), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"AccountToken(id={self.id}, purpose={self.purpose!r}, user_id={self.user_id})"
