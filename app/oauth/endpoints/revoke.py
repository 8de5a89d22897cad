"""POST /revoke: RFC 7009 token revocation."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.db import SessionDep
from app.kit.web import SettingsDep, client_ip
from app.oauth.deps import ClientVerifiersDep, SigningKeysDep
from app.oauth.endpoints.forms import read_token_request
from app.oauth.errors import NO_STORE
from app.oauth.revocation import grant_for_token, revoke_grant
from app.telemetry import note, traced

router = APIRouter()


@router.post("/revoke")
@traced("oauth.revoke")
async def revoke(
    request: Request,
    *,
    session: SessionDep,
    settings: SettingsDep,
    verifiers: ClientVerifiersDep,
    keys: SigningKeysDep,
) -> Response:
    asked = await read_token_request(request, session=session, verifiers=verifiers)
    grant = await grant_for_token(
        session=session, settings=settings, keys=keys, token=asked.token, hint=asked.hint
    )
    # RFC 7009 §2.2: invalid tokens, and tokens of other clients, still get 200.
    ours = grant is not None and grant.client_pk == asked.client.id
    note(gatehouse__outcome="revoked" if ours else "ignored")
    if grant is not None and ours:
        await revoke_grant(
            session,
            grant.id,
            reason="client_revocation",
            ip=client_ip(request),
            user_id=grant.user_id,
        )
    return Response(status_code=200, headers=NO_STORE)
