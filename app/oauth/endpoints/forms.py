"""The form of a request to /token, /revoke or /introspect, and the client that sent it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import SessionDep
from app.kit.text import BadText, check_text
from app.kit.web import SettingsDep
from app.oauth.clients import ClientVerifiers, Presented, authenticate_client
from app.oauth.deps import ClientVerifiersDep, SigningKeysDep
from app.oauth.errors import InvalidRequest
from app.oauth.models import OAuthClient
from app.oauth.signing_keys import SigningKeys

MAX_FIELDS = 50


@dataclass(frozen=True)
class ClientForm:
    """An application/x-www-form-urlencoded body, each parameter at most once (but `resource`)."""

    values: dict[str, list[str]]

    def one(self, name: str) -> str | None:
        found = self.values.get(name)
        return found[0] if found else None

    def all(self, name: str) -> list[str]:
        return self.values.get(name, [])


async def read_form(request: Request) -> ClientForm:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("send the request as application/x-www-form-urlencoded")
    form = await request.form(max_files=0, max_fields=MAX_FIELDS)
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if not isinstance(value, str):
            raise InvalidRequest("file uploads are not accepted")
        try:
            # Checked before any query: PostgreSQL refuses a NUL (app/kit/text.py).
            check_text("a parameter name", key)
            check_text(key, value)
        except BadText as exc:
            raise InvalidRequest(f"{exc.field} {exc.reason}") from exc
        values.setdefault(key, []).append(value)
    # RFC 6749 §3.2: "Request and response parameters MUST NOT be included more than once."
    repeated = [k for k, v in values.items() if len(v) > 1 and k != "resource"]
    if repeated:
        raise InvalidRequest(f"parameters repeated: {', '.join(sorted(repeated))}")
    return ClientForm(values)


async def sending_client(
    request: Request, form: ClientForm, *, session: AsyncSession, verifiers: ClientVerifiers
) -> OAuthClient:
    return await authenticate_client(
        session=session,
        verifiers=verifiers,
        presented=Presented(
            authorization=request.headers.get("authorization"),
            client_id=form.one("client_id"),
            client_secret=form.one("client_secret"),
            assertion_type=form.one("client_assertion_type"),
            assertion=form.one("client_assertion"),
        ),
    )


@dataclass(frozen=True)
class TokenRequest:
    """RFC 7009 §2.1 / RFC 7662 §2.1: the client, the `token` and its `token_type_hint`."""

    client: OAuthClient
    token: str
    hint: str | None


async def read_token_request(
    request: Request, *, session: AsyncSession, verifiers: ClientVerifiers
) -> TokenRequest:
    form = await read_form(request)
    client = await sending_client(request, form, session=session, verifiers=verifiers)
    token = form.one("token")
    if not token:
        raise InvalidRequest("token is required")
    return TokenRequest(client, token, form.one("token_type_hint"))


@dataclass(frozen=True)
class TokenCall:
    """A client's call to /revoke or /introspect and what both endpoints answer it with."""

    request: Request
    session: AsyncSession
    settings: Settings
    verifiers: ClientVerifiers
    keys: SigningKeys

    async def read(self) -> TokenRequest:
        # Read in the route, not in a dependency: a refused client is then recorded on the
        # endpoint's span like every other answer.
        return await read_token_request(
            self.request, session=self.session, verifiers=self.verifiers
        )


async def get_token_call(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    verifiers: ClientVerifiersDep,
    keys: SigningKeysDep,
) -> TokenCall:
    return TokenCall(request, session, settings, verifiers, keys)


TokenCallDep = Annotated[TokenCall, Depends(get_token_call)]
