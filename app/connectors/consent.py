"""The connectors' step on the consent page: collect a credential for each enabled upstream the
person has none for yet, validated upstream before anything is issued (a ConsentExtension)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.connectors import service as connectors
from app.connectors.base import Connector
from app.connectors.cache import ReadCache
from app.kit.envelope import Envelope
from app.kit.ratelimit import RateLimits
from app.oauth.consent import ConsentField
from app.vault import service as vault

FIELD_PREFIX = "credential_"  # the consent form's field is credential_<connector name>


@dataclass(frozen=True, kw_only=True, eq=False)
class ConnectorConsent:
    """Implements app.oauth.consent.ConsentExtension for the enabled connectors."""

    settings: Settings
    enabled: Mapping[str, Connector]
    limits: RateLimits
    envelope: Envelope
    cache: ReadCache

    async def _missing(self, session: AsyncSession, user_id: uuid.UUID) -> list[Connector]:
        """Enabled connectors the person has no credential for."""
        if not self.enabled:
            return []
        stored = await vault.for_user(session, user_id)
        return [c for name, c in self.enabled.items() if name not in stored]

    async def fields(self, session: AsyncSession, *, user_id: uuid.UUID) -> Sequence[ConsentField]:
        return [
            ConsentField(
                name=c.name,
                label=c.label,
                input_label=c.credential.label,
                help_text=c.credential.help_text,
                help_url=c.credential.help_url,
            )
            for c in await self._missing(session, user_id)
        ]

    async def accept(
        self,
        session: AsyncSession,
        *,
        user_id: uuid.UUID,
        values: Mapping[str, str],
        ip: str | None,
    ) -> dict[str, str]:
        problems: dict[str, str] = {}
        for connector in await self._missing(session, user_id):
            value = values.get(f"{FIELD_PREFIX}{connector.name}")
            if value is None or not value.strip():
                continue  # left empty: the tools will ask the person to connect later
            try:
                await connectors.connect(
                    session,
                    settings=self.settings,
                    limits=self.limits,
                    envelope=self.envelope,
                    cache=self.cache,
                    connector=connector,
                    user_id=user_id,
                    secret_text=value,
                    ip=ip,
                )
            except connectors.CredentialProblem as exc:
                problems[connector.name] = str(exc)
        return problems
