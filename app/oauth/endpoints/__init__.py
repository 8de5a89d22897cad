"""The authorization server's HTTP surface: one thin module per endpoint."""

from __future__ import annotations

from fastapi import APIRouter

from app.oauth.endpoints import (
    account_apps,
    authorize,
    client_logo,
    consent,
    discovery,
    introspect,
    register,
    revoke,
    token,
)

router = APIRouter(tags=["oauth"])
for module in (discovery, register, authorize, consent, token, revoke, introspect, account_apps):
    router.include_router(module.router)
router.include_router(client_logo.router)
