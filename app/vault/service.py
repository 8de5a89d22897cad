"""The credential vault: store, read, replace, delete and re-key users' upstream secrets."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import audit
from app.db import rows_affected, utcnow
from app.kit.envelope import DecryptionError, Envelope, Sealed, SecretValue
from app.telemetry import vault_decrypts
from app.vault.models import Credential

LAST_USED_RESOLUTION = timedelta(minutes=5)


class CredentialUnreadable(Exception):
    """The stored credential cannot be decrypted (wrong key, tampered row): reconnect it."""


@dataclass(frozen=True)
class Unsealed:
    secret: SecretValue
    generation: uuid.UUID


def context(user_id: uuid.UUID, connector: str) -> dict[str, str]:
    """The AAD of a credential: a row moved to another user or connector does not open."""
    return {"purpose": "vault", "user_id": str(user_id), "connector": connector}


async def find(session: AsyncSession, user_id: uuid.UUID, connector: str) -> Credential | None:
    stmt = select(Credential).where(
        Credential.user_id == user_id, Credential.connector == connector
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def store(
    session: AsyncSession,
    envelope: Envelope,
    *,
    user_id: uuid.UUID,
    connector: str,
    secret: SecretValue,
    upstream_account: str | None,
    ip: str | None = None,
) -> Credential:
    """Seal and save the user's credential, replacing any earlier one (one per connector)."""
    sealed = await envelope.seal(secret, context=context(user_id, connector))
    now = utcnow()
    row = await find(session, user_id, connector)
    if row is None:
        row = Credential(user_id=user_id, connector=connector, created_at=now)
        session.add(row)
        kind = "credential.created"
    else:
        kind = "credential.replaced"
    row.sealed = sealed.to_bytes()
    row.master_kid = sealed.kid
    row.upstream_account = (upstream_account or "")[:200] or None
    row.generation = uuid.uuid4()
    row.updated_at = now
    row.validated_at = now
    await session.flush()
    audit.record(session, kind, user_id=user_id, ip=ip, connector=connector)
    return row


async def unseal(envelope: Envelope, row: Credential) -> Unsealed:
    try:
        sealed = Sealed.from_bytes(row.sealed)
        secret = await envelope.open_secret(sealed, context=context(row.user_id, row.connector))
    except DecryptionError as exc:
        vault_decrypts.add(1, {"gatehouse.outcome": "failed"})
        raise CredentialUnreadable(
            f"the stored {row.connector} credential cannot be read; connect it again"
        ) from exc
    vault_decrypts.add(1, {"gatehouse.outcome": "ok"})
    return Unsealed(secret=secret, generation=row.generation)


async def load(
    sessionmaker: async_sessionmaker[AsyncSession],
    envelope: Envelope,
    *,
    user_id: uuid.UUID,
    connector: str,
) -> Unsealed | None:
    """The user's credential for a connector, or None; marks it used (at most every 5 min)."""
    async with sessionmaker() as session:
        row = await find(session, user_id, connector)
        if row is None:
            return None
        unsealed = await unseal(envelope, row)
        now = utcnow()
        if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
            row.last_used_at = now
            await session.commit()
        return unsealed


async def remove(
    session: AsyncSession, *, user_id: uuid.UUID, connector: str, ip: str | None = None
) -> bool:
    result = await session.execute(
        delete(Credential).where(Credential.user_id == user_id, Credential.connector == connector)
    )
    removed = rows_affected(result) > 0
    if removed:
        audit.record(session, "credential.deleted", user_id=user_id, ip=ip, connector=connector)
    return removed


async def for_user(session: AsyncSession, user_id: uuid.UUID) -> dict[str, Credential]:
    rows = await session.execute(select(Credential).where(Credential.user_id == user_id))
    return {row.connector: row for row in rows.scalars()}


async def status(session: AsyncSession) -> dict[str, int]:
    """How many credentials each master key wraps."""
    rows = await session.execute(
        select(Credential.master_kid, func.count()).group_by(Credential.master_kid)
    )
    return {kid: int(count) for kid, count in rows.all()}


@dataclass(frozen=True)
class RekeyProgress:
    rewrapped: int
    unreadable: int
    last_id: uuid.UUID | None  # resume after this id; None when nothing was left


async def rekey_batch(
    session: AsyncSession, envelope: Envelope, *, after: uuid.UUID | None, batch: int = 100
) -> RekeyProgress:
    """Re-wrap up to `batch` data keys that are not under the active master key.

    Only the wrapped data key changes, so readers see either the old row (still openable while
    the old master key is configured) or the new one: the service keeps running throughout.
    Walking by id makes the job resumable and lets it pass over rows it cannot open.
    """
    active = envelope.provider.active_kid
    stmt = select(Credential).where(Credential.master_kid != active).order_by(Credential.id)
    if after is not None:
        stmt = stmt.where(Credential.id > after)
    rows = list((await session.execute(stmt.limit(batch))).scalars())
    rewrapped = unreadable = 0
    for row in rows:
        try:
            sealed = Sealed.from_bytes(row.sealed)
            new = await envelope.rewrap(sealed, context=context(row.user_id, row.connector))
        except DecryptionError:
            unreadable += 1
            continue
        # Conditional on the generation: if the user replaced the credential meanwhile, the new
        # secret (already under the active key) must not be overwritten with the old one.
        result = await session.execute(
            update(Credential)
            .where(Credential.id == row.id, Credential.generation == row.generation)
            .values(sealed=new.to_bytes(), master_kid=new.kid)
            .execution_options(synchronize_session=False)
        )
        rewrapped += rows_affected(result)
    return RekeyProgress(rewrapped, unreadable, rows[-1].id if rows else None)
