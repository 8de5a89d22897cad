"""Clients: find, resolve (registered or by CIMD) and authenticate them (RFC 6749 §2.3)."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from sqlalchemy import bindparam, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.kit.security import constant_time_equals
from app.kit.text import text_problem
from app.oauth.cimd import CimdError, ClientMetadataDocument, is_cimd_client_id
from app.oauth.cimd_fetch import CimdFetcher
from app.oauth.client_assertions import JWT_BEARER, assertion_issuer, verify_assertion
from app.oauth.client_keys import PRIVATE_KEY_JWT, ClientKeys
from app.oauth.errors import InvalidClient, InvalidRequest, InvalidScope
from app.oauth.models import OAuthClient
from app.oauth.redirect_uris import redirect_uri_problem
from app.oauth.registration import clean_display_name, hash_client_secret
from app.telemetry import failed, flow_span, outcome

MAX_CLIENT_ID_LENGTH = 2048


class ClientProblem(Exception):
    """The client_id or redirect_uri cannot be trusted: show a page, never redirect."""


# Built once (see app/oauth/issuance.py's _REFRESH_BY_HASH): every token request runs it.
_CLIENT_BY_ID = select(OAuthClient).where(OAuthClient.client_id == bindparam("client_id"))


async def find_client(session: AsyncSession, client_id: str) -> OAuthClient | None:
    result = await session.execute(_CLIENT_BY_ID, {"client_id": client_id})
    return result.scalar_one_or_none()


async def _cimd_client(session: AsyncSession, document: ClientMetadataDocument) -> OAuthClient:
    """The client a metadata document describes: its row refreshed, or a new unsaved one.

    A new CIMD client is only written when a person approves it (see persist_client), so
    fetching documents through /authorize cannot fill the database.
    """
    # The same redirect URI policy as registration: a document cannot smuggle in a scheme or a
    # non-loopback http URI that /register would refuse.
    for uri in document.redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise ClientProblem(f"The client's metadata document is not acceptable: {problem}.")
    client = await find_client(session, document.client_id)
    if client is None:
        client = OAuthClient(
            id=uuid.uuid4(),
            client_id=document.client_id,
            kind="cimd",
            token_endpoint_auth_method="none",  # noqa: S106 - an auth method, not a password
        )
    client.client_name = clean_display_name(document.client_name)
    client.redirect_uris = list(document.redirect_uris)
    client.grant_types = list(document.grant_types)
    client.response_types = list(document.response_types)
    client.scope = document.scope
    # The document says how the client authenticates (none, or private_key_jwt and its keys).
    client.token_endpoint_auth_method = document.token_endpoint_auth_method
    client.client_metadata = {
        "client_name": document.client_name,
        "redirect_uris": list(document.redirect_uris),
        "client_uri": document.client_uri,
        "logo_uri": document.logo_uri,
    }
    if document.jwks is not None:
        client.client_metadata["jwks"] = document.jwks
    if document.jwks_uri is not None:
        client.client_metadata["jwks_uri"] = document.jwks_uri
    return client


async def persist_client(session: AsyncSession, client: OAuthClient) -> OAuthClient:
    """Save a CIMD client met for the first time; the row that won if two approvals race."""
    if inspect(client).persistent:
        return client
    try:
        async with session.begin_nested():
            session.add(client)
    except IntegrityError:  # approved concurrently elsewhere: use the row that won
        found = await find_client(session, client.client_id)
        if found is None:
            raise
        return found
    return client


async def _fetch_document(fetcher: CimdFetcher, client_id: str) -> ClientMetadataDocument:
    with flow_span("oauth.cimd.fetch", oauth__client_id=client_id) as span:
        try:
            document = await fetcher.fetch(client_id)
        except CimdError as exc:
            failed(span, "cimd_error", str(exc))
            raise ClientProblem(f"The client's metadata document could not be used: {exc}") from exc
        outcome(span, "ok")
    return document


async def resolve_client(
    session: AsyncSession, fetcher: CimdFetcher, client_id: str | None
) -> OAuthClient:
    """The client named by client_id: registered, or fetched from its metadata document URL."""
    if not client_id:
        raise ClientProblem("The request has no client_id.")
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        raise ClientProblem("The client_id is too long.")
    if text_problem(client_id):
        raise ClientProblem("The client_id holds characters no client id has.")
    if is_cimd_client_id(client_id):
        client = await _cimd_client(session, await _fetch_document(fetcher, client_id))
    else:
        found = await find_client(session, client_id)
        if found is None:
            raise ClientProblem(
                "This client is not registered here (or its registration expired). "
                "Ask the app to connect again."
            )
        client = found
    if client.revoked_at is not None:
        raise ClientProblem("This client has been blocked by an administrator.")
    return client


def check_client_scope(client: OAuthClient, scopes: Sequence[str]) -> None:
    if client.scope:
        allowed = set(client.scope.split())
        extra = [s for s in scopes if s not in allowed]
        if extra:
            raise InvalidScope(f"this client was registered without the scope {' '.join(extra)}")


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization or not authorization[:6].lower() == "basic ":
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidClient("the Basic credentials are malformed") from exc
    if ":" not in decoded:
        raise InvalidClient("the Basic credentials are malformed")
    client_id, secret = decoded.split(":", 1)
    # RFC 6749 §2.3.1: the client identifier and password are form-urlencoded before encoding.
    client_id, secret = unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
    if text_problem(client_id) or text_problem(secret):
        raise InvalidClient("the Basic credentials hold characters no client id or secret has")
    return client_id, secret


@dataclass(frozen=True)
class Presented:
    """What a request to /token, /revoke or /introspect carries to authenticate its client."""

    authorization: str | None
    client_id: str | None
    client_secret: str | None
    assertion_type: str | None
    assertion: str | None


@dataclass(frozen=True)
class ClientVerifiers:
    """What checking a client's credentials needs: the secret key (secrets are stored as HMACs),
    the metadata fetcher (CIMD clients), the key sets (private_key_jwt), our audiences."""

    secret_key: bytes
    fetcher: CimdFetcher
    keys: ClientKeys
    audiences: frozenset[str]


def _presented_method(presented: Presented) -> tuple[str, str | None, str | None]:
    """The method the client used, its client_id and its secret (or assertion)."""
    basic = _basic_credentials(presented.authorization)
    form_id, form_secret = presented.client_id, presented.client_secret
    assertion = presented.assertion or presented.assertion_type
    # RFC 6749 §2.3: "The client MUST NOT use more than one authentication method in each
    # request."
    if sum(bool(x) for x in (basic, form_secret, assertion)) > 1 or (
        basic and form_id and form_id != basic[0]
    ):
        raise InvalidRequest("use exactly one client authentication method")
    if basic:
        return "client_secret_basic", basic[0], basic[1]
    if form_secret:
        return "client_secret_post", form_id, form_secret
    if assertion:
        return PRIVATE_KEY_JWT, _assertion_client_id(presented), presented.assertion
    return "none", form_id, None


def _assertion_client_id(presented: Presented) -> str | None:
    # RFC 7523 §2.2: the value of client_assertion_type "MUST be
    # urn:ietf:params:oauth:client-assertion-type:jwt-bearer", and client_assertion carries it.
    if presented.assertion_type != JWT_BEARER or not presented.assertion:
        raise InvalidClient(f"client_assertion_type must be {JWT_BEARER}, with client_assertion")
    issuer = assertion_issuer(presented.assertion)
    # RFC 7521 §4.2: client_id is OPTIONAL; if present it MUST identify the same client.
    if presented.client_id and presented.client_id != issuer:
        raise InvalidClient("client_id does not match the client assertion's iss")
    return issuer


async def authenticate_client(
    *, session: AsyncSession, verifiers: ClientVerifiers, presented: Presented
) -> OAuthClient:
    """RFC 6749 §2.3: authenticate the client by the method it registered."""
    method, client_id, secret = _presented_method(presented)
    if not client_id:
        raise InvalidClient("client authentication is required (send client_id)")
    try:
        client = await resolve_client(session, verifiers.fetcher, client_id)
    except ClientProblem as exc:
        raise InvalidClient(str(exc)) from exc
    if client.token_endpoint_auth_method != method:
        raise InvalidClient(
            f"this client must authenticate with {client.token_endpoint_auth_method}"
        )
    if method == PRIVATE_KEY_JWT:
        await verify_assertion(
            session=session,
            keys=verifiers.keys,
            client=client,
            assertion=secret or "",
            audiences=verifiers.audiences,
        )
    elif method != "none":
        expected = client.client_secret_hash or ""
        if secret is None or not constant_time_equals(
            hash_client_secret(verifiers.secret_key, secret), expected
        ):
            raise InvalidClient("client authentication failed")
    return client
