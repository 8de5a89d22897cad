"""RFC 7591 dynamic client registration: validate the metadata, store the client."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config_checks import RESOURCE_SERVER_ID_PREFIX
from app.kit.security import hash_token, new_token
from app.oauth.client_keys import PRIVATE_KEY_JWT, KeySetProblem, check_jwks_uri, check_key_set
from app.oauth.errors import InvalidClientMetadata, InvalidRedirectUri
from app.oauth.models import OAuthClient, OAuthGrant
from app.oauth.redirect_uris import redirect_uri_problem
from app.oauth.scopes import names_known_scope, parse_scope

CLIENT_ID_PREFIX = "gh_c_"
CLIENT_SECRET_PREFIX = "gh_cs_"  # noqa: S105 - a prefix, not a secret
RESOURCE_SERVER_KIND = "resource"
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post", "private_key_jwt")
GRANT_TYPES = ("authorization_code", "refresh_token")
MAX_REDIRECT_URIS = 10
MAX_STRING = 200
MAX_URL = 2000
URL_FIELDS = ("client_uri", "logo_uri", "tos_uri", "policy_uri")
STRING_FIELDS = ("software_id", "software_version")


# Control characters and bidirectional overrides could make a name on the consent page read as
# something else ("‮ebuoY" shown as "Yoube…").
_UNSAFE_DISPLAY = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_display_name(name: str) -> str:
    return " ".join(_UNSAFE_DISPLAY.sub("", name).split())[:MAX_STRING]


@dataclass(frozen=True)
class Registered:
    client: OAuthClient
    client_secret: str | None  # returned once, then only its hash exists


def _string_list(metadata: dict[str, Any], name: str, default: list[str]) -> list[str]:
    value = metadata.get(name, default)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidClientMetadata(f"{name} must be an array of strings")
    return list(dict.fromkeys(value))


def _redirect_uris(metadata: dict[str, Any]) -> list[str]:
    redirect_uris = _string_list(metadata, "redirect_uris", [])
    if not redirect_uris:
        raise InvalidRedirectUri("redirect_uris is required and must not be empty")
    if len(redirect_uris) > MAX_REDIRECT_URIS:
        raise InvalidRedirectUri(f"at most {MAX_REDIRECT_URIS} redirect_uris may be registered")
    for uri in redirect_uris:
        problem = redirect_uri_problem(uri)
        if problem:
            raise InvalidRedirectUri(problem)
    return redirect_uris


def _grants(metadata: dict[str, Any]) -> dict[str, Any]:
    """The auth method, grant types and response types."""
    method = metadata.get("token_endpoint_auth_method") or "client_secret_basic"
    if method not in AUTH_METHODS:
        raise InvalidClientMetadata(
            f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    # RFC 7591 §2 defaults to ["authorization_code"]; MCP clients need refresh tokens, and a
    # refresh token issued to a client that may not use it would be dead weight.
    grant_types = _string_list(metadata, "grant_types", ["authorization_code", "refresh_token"])
    unsupported = [g for g in grant_types if g not in GRANT_TYPES]
    if unsupported or "authorization_code" not in grant_types:
        raise InvalidClientMetadata(
            "grant_types must include authorization_code and may include refresh_token only"
        )
    response_types = _string_list(metadata, "response_types", ["code"])
    if response_types != ["code"]:
        raise InvalidClientMetadata('response_types must be ["code"]')
    return {
        "token_endpoint_auth_method": method,
        "grant_types": grant_types,
        "response_types": response_types,
    }


def _scope(metadata: dict[str, Any]) -> str | None:
    scope = metadata.get("scope")
    if scope is None:
        return None
    if not isinstance(scope, str):
        raise InvalidClientMetadata("scope must be a space-separated string")
    # RFC 7591 §2: "the authorization server MAY replace the requested set of metadata values
    # with suitable default values": unknown scopes are dropped (RFC 6749 §3.3), and a scope
    # naming none of ours (`openid profile`) limits nothing.
    if not names_known_scope(scope):
        return None
    return " ".join(parse_scope(scope))


def _client_name(metadata: dict[str, Any]) -> str:
    name = metadata.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_STRING:
        raise InvalidClientMetadata(f"client_name must be a string of at most {MAX_STRING} chars")
    return clean_display_name(name)


def _optional_fields(metadata: dict[str, Any]) -> dict[str, Any]:
    """The display and informational fields that were given, each checked."""
    clean: dict[str, Any] = {}
    for field in URL_FIELDS:
        value = metadata.get(field)
        if value in (None, ""):
            continue
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme != "https" or not parts.netloc or len(value) > MAX_URL:
            raise InvalidClientMetadata(f"{field} must be an https URL")
        clean[field] = value
    for field in STRING_FIELDS:
        value = metadata.get(field)
        if value in (None, ""):
            continue
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise InvalidClientMetadata(f"{field} must be a string of at most {MAX_STRING} chars")
        clean[field] = value
    if metadata.get("contacts") not in (None, []):
        clean["contacts"] = _string_list(metadata, "contacts", [])[:5]
    if metadata.get("application_type") in ("web", "native"):
        clean["application_type"] = metadata["application_type"]
    return clean


def validate_metadata(metadata: object) -> dict[str, Any]:
    """The client's metadata, checked and normalised; raises with a description of what to fix."""
    if not isinstance(metadata, dict):
        raise InvalidClientMetadata("the registration request must be a JSON object")
    # Checked in this order, so the first problem reported is the same as it always was.
    redirect_uris = _redirect_uris(metadata)
    grants = _grants(metadata)
    scope = _scope(metadata)
    clean: dict[str, Any] = {
        "redirect_uris": redirect_uris,
        **grants,
        "client_name": _client_name(metadata),
    }
    if scope:
        clean["scope"] = scope
    if grants["token_endpoint_auth_method"] == PRIVATE_KEY_JWT:
        clean |= client_key_fields(metadata, InvalidClientMetadata)
    return clean | _optional_fields(metadata)


def client_key_fields(
    metadata: dict[str, Any], problem: Callable[[str], Exception]
) -> dict[str, Any]:
    """RFC 7591 §2: a private_key_jwt client's `jwks` or `jwks_uri` — "These two metadata
    fields MUST NOT both be present in the same request or response"."""
    jwks, jwks_uri = metadata.get("jwks"), metadata.get("jwks_uri")
    if (jwks is None) == (jwks_uri is None):
        raise problem("a private_key_jwt client needs exactly one of jwks and jwks_uri")
    try:
        if jwks is not None:
            return {"jwks": check_key_set(jwks)}
        return {"jwks_uri": check_jwks_uri(jwks_uri)}
    except KeySetProblem as exc:
        raise problem(str(exc)) from exc


def hash_client_secret(secret_key: bytes, secret: str) -> str:
    """What is stored of a client secret, and compared when a client authenticates."""
    return hash_token(secret_key, secret, purpose="client-secret")


def new_client_secret(secret_key: bytes) -> tuple[str, str]:
    """A fresh client secret, to show once, and its hash, to store."""
    secret = new_token(CLIENT_SECRET_PREFIX)
    return secret, hash_client_secret(secret_key, secret)


async def make_room(session: AsyncSession, *, max_unused: int) -> int:
    """Evict the oldest never-used registrations so that one more fits under `max_unused`.

    Never used: registered through /register, no grant, never sent to /token. Counted first, then
    at most the excess is deleted, so a flood of registrations costs a bounded amount of storage
    and each registration a bounded amount of work. Returns how many were evicted.
    """
    has_grant = select(OAuthGrant.id).where(OAuthGrant.client_pk == OAuthClient.id).exists()
    unused = (OAuthClient.kind == "registered") & OAuthClient.last_used_at.is_(None) & ~has_grant
    count = await session.scalar(select(func.count()).select_from(OAuthClient).where(unused))
    excess = (count or 0) - max_unused + 1
    if excess <= 0:
        return 0
    oldest = select(OAuthClient.id).where(unused).order_by(OAuthClient.created_at).limit(excess)
    ids = list((await session.execute(oldest)).scalars())
    await session.execute(delete(OAuthClient).where(OAuthClient.id.in_(ids)))
    audit.record(session, "client.evicted_unused", count=len(ids))
    return len(ids)


async def register_client(
    session: AsyncSession,
    *,
    secret_key: bytes,
    metadata: object,
    ip: str | None,
    max_unused: int,
) -> Registered:
    clean = validate_metadata(metadata)
    await make_room(session, max_unused=max_unused)
    secret = None
    secret_hash = None
    if clean["token_endpoint_auth_method"] not in ("none", PRIVATE_KEY_JWT):
        secret, secret_hash = new_client_secret(secret_key)
    client = OAuthClient(
        client_id=new_token(CLIENT_ID_PREFIX)[:40],
        kind="registered",
        client_name=clean["client_name"],
        redirect_uris=clean["redirect_uris"],
        token_endpoint_auth_method=clean["token_endpoint_auth_method"],
        client_secret_hash=secret_hash,
        grant_types=clean["grant_types"],
        response_types=clean["response_types"],
        scope=clean.get("scope"),
        client_metadata=clean,
        registration_ip=ip,
    )
    session.add(client)
    await session.flush()
    audit.record(
        session,
        "client.registered",
        ip=ip,
        client_id=client.client_id,
        client_name=client.client_name,
        auth_method=client.token_endpoint_auth_method,
    )
    return Registered(client=client, client_secret=secret)


async def register_resource_server(
    session: AsyncSession, *, secret_key: bytes, name: str
) -> Registered:
    """A protected resource that may introspect this server's access tokens (RFC 7662 §2.1),
    registered by an administrator; it can neither authorize nor obtain tokens."""
    secret, secret_hash = new_client_secret(secret_key)
    client = OAuthClient(
        client_id=new_token(RESOURCE_SERVER_ID_PREFIX)[:40],
        kind=RESOURCE_SERVER_KIND,
        client_name=name,
        redirect_uris=[],
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method, not a secret
        client_secret_hash=secret_hash,
        grant_types=[],
        response_types=[],
        client_metadata={},
    )
    session.add(client)
    await session.flush()
    audit.record(
        session,
        "client.registered",
        client_id=client.client_id,
        client_name=name,
        client_kind=RESOURCE_SERVER_KIND,
    )
    return Registered(client=client, client_secret=secret)


def registration_response(registered: Registered) -> dict[str, Any]:
    """RFC 7591 §3.2.1: the client information response."""
    client = registered.client
    body: dict[str, Any] = {
        **client.client_metadata,
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
    }
    if registered.client_secret:
        body["client_secret"] = registered.client_secret
        body["client_secret_expires_at"] = 0
    return body
