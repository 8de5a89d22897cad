"""POST /token: the authorization_code and refresh_token grants (OAuth 2.1 §3.2)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.db import SessionDep
from app.kit.web import SettingsDep, client_ip
from app.oauth.deps import ClientVerifiersDep, EnvelopeDep, SigningKeysDep
from app.oauth.endpoints.forms import read_form, sending_client
from app.oauth.errors import NO_STORE, InvalidRequest, UnsupportedGrantType
from app.oauth.grants.authorization_code import exchange_code
from app.oauth.grants.refresh_token import RefreshRequest, refresh
from app.telemetry import note, tokens_issued, traced

router = APIRouter()


@router.post("/token")
@traced("oauth.token")
async def token(
    request: Request,
    *,
    session: SessionDep,
    settings: SettingsDep,
    verifiers: ClientVerifiersDep,
    keys: SigningKeysDep,
    envelope: EnvelopeDep,
) -> Response:
    ip = client_ip(request)
    form = await read_form(request)
    grant_type = form.one("grant_type")
    note(oauth__grant_type=grant_type)
    client = await sending_client(request, form, session=session, verifiers=verifiers)
    if grant_type == "authorization_code":
        result = await exchange_code(
            session=session,
            settings=settings,
            keys=keys,
            client=client,
            code=form.one("code"),
            redirect_uri=form.one("redirect_uri"),
            verifier=form.one("code_verifier"),
            resources=form.all("resource"),
            ip=ip,
        )
    elif grant_type == "refresh_token":
        result = await refresh(
            session=session,
            settings=settings,
            keys=keys,
            envelope=envelope,
            request=RefreshRequest(
                client=client,
                refresh_token=form.one("refresh_token"),
                scope=form.one("scope"),
                resources=form.all("resource"),
                ip=ip,
            ),
        )
    elif not grant_type:
        raise InvalidRequest("grant_type is required")
    else:
        raise UnsupportedGrantType("grant_type must be authorization_code or refresh_token")
    note(oauth__client_id=client.client_id)
    tokens_issued.add(1, {"oauth.grant_type": grant_type})
    return JSONResponse(result.as_json(), headers=NO_STORE)
