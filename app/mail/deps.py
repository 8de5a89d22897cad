"""The app's outbox as a named dependency."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.mail.outbox import Outbox


def get_outbox(request: Request) -> Outbox:
    outbox: Outbox = request.app.state.outbox
    return outbox


OutboxDep = Annotated[Outbox, Depends(get_outbox)]
