"""Stored upstream credentials, sealed (envelope encryption); never a plaintext column."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UUIDPrimaryKey, utcnow


class Credential(UUIDPrimaryKey, Base):
    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("user_id", "connector"),)

    # The type is spelled out: taken from the foreign key, it is unknown in a process that has
    # not imported the users model (the CLI's `vault rekey`), and SQLite then hands back the raw
    # hex string, which is not the user id the AAD was sealed with.
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id", ondelete="CASCADE"))
    connector: Mapped[str] = mapped_column(String(64))
    # Sealed.to_bytes(): format version, master key id, wrapped data key, nonce, ciphertext.
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    master_kid: Mapped[str] = mapped_column(String(32), index=True)
    # Who the upstream says the credential belongs to (e.g. a GitHub login): shown, not secret.
    upstream_account: Mapped[str | None] = mapped_column(String(200), default=None)
    # Changes whenever the secret does: part of every cache key, so a new credential never
    # sees the old one's cached results.
    generation: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    validated_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)

    def __repr__(self) -> str:
        return f"Credential(user_id={self.user_id}, connector={self.connector!r})"
