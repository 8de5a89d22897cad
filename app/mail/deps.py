"""The app's outbox as a named dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from app.mail.outbox import Outbox
from app.state import ServicesDep


async def get_outbox(services: ServicesDep) -> Outbox:
    return services.outbox


OutboxDep = Annotated[Outbox, Depends(get_outbox)]
