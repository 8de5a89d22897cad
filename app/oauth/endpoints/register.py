"""POST /register: RFC 7591 dynamic client registration."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from app.db import SessionDep
from app.kit.body_limit import BodyTooLarge, read_body
from app.kit.text import BadText, check_json_strings
from app.kit.web import SettingsDep, client_ip
from app.oauth.deps import RateLimitsDep
from app.oauth.errors import NO_STORE, InvalidClientMetadata, InvalidRequest, TooManyRequests
from app.oauth.registration import register_client, registration_response
from app.telemetry import note, traced

router = APIRouter()

MAX_REGISTRATION_BYTES = 16 * 1024


@router.post("/register")
@traced("oauth.register")
async def register(
    request: Request, *, session: SessionDep, settings: SettingsDep, limits: RateLimitsDep
) -> Response:
    ip = client_ip(request) or "unknown"
    verdict = await limits.hit(limits.rule(settings.registration_limit_ip), "register-ip", ip)
    if not verdict.allowed:
        raise TooManyRequests(
            "too many registrations from this address; retry later",
            retry_after=verdict.retry_after,
        )
    try:
        body = await read_body(request, max_bytes=MAX_REGISTRATION_BYTES)
    except BodyTooLarge as exc:
        raise InvalidRequest(
            f"the registration request is too large (at most {MAX_REGISTRATION_BYTES} bytes)"
        ) from exc
    try:
        metadata = json.loads(body or b"null")
    except ValueError as exc:
        raise InvalidRequest("the registration request must be JSON") from exc
    try:
        check_json_strings(metadata)  # before any query: PostgreSQL refuses a NUL
    except BadText as exc:
        raise InvalidClientMetadata(f"{exc.field} {exc.reason}") from exc
    registered = await register_client(
        session,
        secret_key=settings.secret_key_bytes,
        metadata=metadata,
        ip=ip,
        max_unused=settings.registration_max_unused,
    )
    note(
        gatehouse__outcome="registered",
        oauth__client_id=registered.client.client_id,
        oauth__auth_method=registered.client.token_endpoint_auth_method,
    )
    return JSONResponse(registration_response(registered), status_code=201, headers=NO_STORE)
