"""Audit events: who did what, when, from where. The detail is small and never holds a secret."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String
from sqlalchemy import insert as sa_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UUIDPrimaryKey, table_of, utcnow

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
    session.add(AuditEvent(kind=kind, user_id=user_id, ip=ip, detail=_clipped(detail)))


async def insert(
    session: AsyncSession,
    kind: str,
    *,
    user_id: uuid.UUID | None = None,
    ip: str | None = None,
    **detail: str | int | bool | None,
) -> None:
    """`record`, as one INSERT now rather than an object for the commit's flush: for a hot path
    whose other writes are statements too, so the commit has nothing to flush (the unit of work
    cost a token refresh more than its INSERTs; bench/token_bench.py)."""
    await insert_event(session, event_values(kind, user_id=user_id, ip=ip, **detail))


async def insert_event(session: AsyncSession, values: dict[str, Any]) -> None:
    """`insert`, of an event's `event_values`."""
    await session.execute(_INSERT, values)


def event_values(
    kind: str,
    *,
    user_id: uuid.UUID | None = None,
    ip: str | None = None,
    **detail: str | int | bool | None,
) -> dict[str, Any]:
    """An event's columns, but for `id` and `at`: for a statement that writes the event together
    with other work (app/oauth/grants/rotation.py)."""
    return {"kind": kind, "user_id": user_id, "ip": ip, "detail": _clipped(detail)}


def _clipped(detail: dict[str, str | int | bool | None]) -> dict[str, str | int | bool | None]:
    return {k: v[:MAX_DETAIL_VALUE] if isinstance(v, str) else v for k, v in detail.items()}


_INSERT = sa_insert(table_of(AuditEvent))
