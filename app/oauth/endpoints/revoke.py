"""POST /revoke: RFC 7009 token revocation."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from app.kit.web import client_ip
from app.oauth.endpoints.forms import TokenCallDep
from app.oauth.errors import NO_STORE
from app.oauth.revocation import grant_for_token, revoke_grant
from app.telemetry import note, traced

router = APIRouter()


@router.post("/revoke")
@traced("oauth.revoke")
async def revoke(call: TokenCallDep) -> Response:
    asked = await call.read()
    grant = await grant_for_token(
        session=call.session,
        settings=call.settings,
        keys=call.keys,
        token=asked.token,
        hint=asked.hint,
    )
    # RFC 7009 §2.2: invalid tokens, and tokens of other clients, still get 200.
    ours = grant is not None and grant.client_pk == asked.client.id
    note(gatehouse__outcome="revoked" if ours else "ignored")
    if grant is not None and ours:
        await revoke_grant(
            call.session,
            grant.id,
            reason="client_revocation",
            ip=client_ip(call.request),
            user_id=grant.user_id,
        )
    return Response(status_code=200, headers=NO_STORE)
