"""POST /token: the authorization_code and refresh_token grants (OAuth 2.1 §3.2).

The hottest endpoint of the authorization server (every client refreshes), so it is answered in
front of the router (`put_before_router`, app/kit/front.py): a plain Starlette endpoint that
reads the app's Services itself, behind the pages' body limit and CORS and with the app's
exception handlers, and no dependency solving. The router keeps a POST route at /token only so that
other methods get 405 with `Allow: POST`.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import request_response

from app.db import unit_of_work
from app.kit.front import InFront, handled
from app.kit.web import client_ip
from app.oauth.deps import get_client_verifiers
from app.oauth.endpoints.forms import read_form, sending_client
from app.oauth.errors import NO_STORE, InvalidRequest, UnsupportedGrantType
from app.oauth.grants.authorization_code import exchange_code
from app.oauth.grants.refresh_token import RefreshRequest, refresh
from app.state import Services, services_of
from app.telemetry import note, tokens_issued, traced

PATH = "/token"

router = APIRouter()


async def token_endpoint(request: Request) -> Response:
    """One request, one unit of work: committed before the answer is sent, so a client never
    holds a token whose row is not durable."""
    services = services_of(request.app)
    async with unit_of_work(services.sessionmaker) as session:
        return await token(request, session=session, services=services)


@traced("oauth.token")
async def token(request: Request, *, session: AsyncSession, services: Services) -> Response:
    settings = services.settings
    keys = services.authorization().signing_keys
    ip = client_ip(request)
    form = await read_form(request)
    grant_type = form.one("grant_type")
    note(oauth__grant_type=grant_type)
    verifiers = await get_client_verifiers(services)
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
            envelope=services.envelope,
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


# Never reached by a POST while `put_before_router` is installed; it makes the router answer other
# methods with 405 and `Allow: POST` (RFC 9110 §15.5.6).
router.add_route(PATH, token_endpoint, methods=["POST"], include_in_schema=False)


def put_before_router(app: FastAPI) -> None:
    """POST /token straight to `token_endpoint`, past FastAPI's exit stack, the route scan and
    the dependency solver. Add it before the pages' BodyLimit and PublicCors, so it sits inside
    them and /token keeps both."""
    app.add_middleware(
        InFront,
        endpoint=handled(request_response(token_endpoint), app.exception_handlers),
        paths=frozenset({PATH}),
        methods=frozenset({"POST"}),
    )
