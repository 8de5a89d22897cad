"""A refresh token's rotation written to the database: the guarded UPDATE that decides the race,
the successor's row and the audit event, as one unit.

On PostgreSQL the three are one statement (data-modifying CTEs, PostgreSQL §7.8.4): the UPDATE
returns the row it rotated, and both INSERTs select from that, so they write a row only when the
UPDATE won. A rotation then costs one round trip instead of three; the round trips were most of a
refresh grant's CPU (bench/token_bench.py). SQLite has no data-modifying CTE, so there the same
work is three statements in the same transaction. Either way the outcome is the same rows or none.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.audit import AuditEvent
from app.db import rows_affected, table_of
from app.oauth.issuance import INSERT_REFRESH
from app.oauth.models import RefreshToken

# Built once (app/oauth/issuance.py's _REFRESH_BY_HASH), on the tables: the row in hand is not
# read again after a rotation, and a lost race re-reads it (refresh_token.py's `_live_head`).
_TOKENS, _AUDIT = table_of(RefreshToken), table_of(AuditEvent)
_ROTATE = (
    update(_TOKENS)
    .where(_TOKENS.c.id == bindparam("row_id"), _TOKENS.c.rotated_at.is_(None))
    .values(
        rotated_at=bindparam("at"),
        successor_id=bindparam("successor"),
        successor_sealed=bindparam("sealed"),
    )
)
_SUCCESSOR_COLUMNS = (
    "id",
    "token_hash",
    "grant_id",
    "client_pk",
    "scopes",
    "created_at",
    "expires_at",
)
_AUDIT_COLUMNS = ("id", "at", "user_id", "kind", "ip", "detail")


def _selected(columns: list[Column[Any]], prefix: str) -> list[Any]:
    # Typed parameters: the asyncpg dialect renders `$n::TYPE`, so PostgreSQL need not infer a
    # SELECT list's types (unknown would resolve to text). Not CAST, which would truncate a
    # too-long VARCHAR where the INSERT refuses it.
    return [bindparam(prefix + c.key, type_=c.type) for c in columns]


def _rotate_and_record() -> Any:
    rotated = _ROTATE.returning(_TOKENS.c.id).cte("rotated")
    audit_columns = [_AUDIT.c[name] for name in _AUDIT_COLUMNS]
    audited = (
        insert(_AUDIT)
        .from_select(
            audit_columns, select(*_selected(audit_columns, "audit_")).select_from(rotated)
        )
        .cte("audited")
    )
    successor_columns = [_TOKENS.c[name] for name in _SUCCESSOR_COLUMNS]
    return (
        insert(_TOKENS)
        .from_select(
            successor_columns,
            select(*_selected(successor_columns, "new_")).select_from(rotated),
        )
        .add_cte(rotated, nest_here=True)
        .add_cte(audited, nest_here=True)
    )


_ROTATE_AND_RECORD = _rotate_and_record()


async def rotate_row(
    session: AsyncSession,
    *,
    row_id: uuid.UUID,
    now: datetime,
    sealed: bytes,
    successor: dict[str, Any],
    event: dict[str, Any],
) -> bool:
    """Mark `row_id` rotated to `successor` (its columns, `id` included), write the successor and
    the audit `event` (`audit.event_values`); False, and nothing written, if another request
    rotated the row first.

    The guarded UPDATE decides the race; successor_id is no foreign key, so it may name the row
    before the row exists inside this transaction."""
    rotation = {"row_id": row_id, "at": now, "successor": successor["id"], "sealed": sealed}
    successor = {**successor, "created_at": now}
    event = {**event, "id": uuid.uuid4(), "at": now}
    if session.get_bind().dialect.name == "postgresql":
        written = await session.execute(
            _ROTATE_AND_RECORD,
            {
                **rotation,
                **{f"new_{k}": successor[k] for k in _SUCCESSOR_COLUMNS},
                **{f"audit_{k}": event[k] for k in _AUDIT_COLUMNS},
            },
        )
        return bool(rows_affected(written))
    if not rows_affected(await session.execute(_ROTATE, rotation)):
        return False
    await session.execute(INSERT_REFRESH, successor)
    await audit.insert_event(session, event)
    return True
