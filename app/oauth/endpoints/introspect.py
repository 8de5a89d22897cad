"""POST /introspect: RFC 7662 token introspection."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from app.oauth.endpoints.forms import TokenCallDep
from app.oauth.errors import NO_STORE, InvalidClient
from app.oauth.introspection import introspect as introspect_token
from app.telemetry import note, traced

router = APIRouter()


@router.post("/introspect")
@traced("oauth.introspect")
async def introspect(call: TokenCallDep) -> Response:
    asked = await call.read()
    if asked.client.is_public:
        # RFC 7662 §2.1: "the endpoint MUST also require some form of authorization".
        raise InvalidClient("introspection needs a confidential client")
    body = await introspect_token(
        session=call.session,
        settings=call.settings,
        keys=call.keys,
        token=asked.token,
        caller=asked.client,
    )
    note(gatehouse__outcome="active" if body.get("active") else "inactive")
    return JSONResponse(body, headers=NO_STORE)
