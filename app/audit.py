"""Audit events: who did what, when, from where. The detail is small and never holds a secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UUIDPrimaryKey, utcnow

MAX_DETAIL_VALUE = 200


class AuditEvent(UUIDPrimaryKey, Base):
    __tablename__ = "audit_events"

    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), index=True, default=None
    )
    kind: Mapped[str] = mapped_column(String(64), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


def record(
    session: AsyncSession,
    kind: str,
    *,
    user_id: uuid.UUID | None = None,
    ip: str | None = None,
    **detail: str | int | bool | None,
) -> None:
    """Add an audit event to the caller's transaction (it lands or rolls back with the work)."""
    clipped = {k: v[:MAX_DETAIL_VALUE] if isinstance(v, str) else v for k, v in detail.items()}
    session.add(AuditEvent(kind=kind, user_id=user_id, ip=ip, detail=clipped))
