"""`authenticate` and `McpAuth`: a bearer token becomes an `AuthContext`, or a challenge.

MCP 2025-11-25 "Authorization" and RFC 6750 §3 / RFC 9728 §5.1: a request without a token gets
401 with `WWW-Authenticate: Bearer resource_metadata=..., scope=...`; a bad token the same plus
`error="invalid_token"`; a token without a needed scope 403 `error="insufficient_scope"`, naming
the scopes to ask for, so clients can step up.

`/mcp` calls `authenticate` itself; any other route protects itself with the same tokens by
taking `auth: McpAuth` (see `app.mcp.api` and the README's "Protecting your own routes").
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse

from app.config import Settings
from app.mcp.context import AuthContext
from app.oauth.access_tokens import InvalidAccessToken
from app.oauth.scopes import BASE_SCOPE, SUPPORTED_SCOPES
from app.state import ResourceServices, ServicesDep
from app.telemetry import challenges

ALL_SCOPES = " ".join(SUPPORTED_SCOPES)


class McpChallenge(Exception):
    def __init__(
        self, status_code: int, *, error: str | None = None, description: str | None = None
    ) -> None:
        super().__init__(description or error or "authentication required")
        self.status_code = status_code
        self.error = error
        self.description = description


def challenge_response(settings: Settings, exc: McpChallenge) -> JSONResponse:
    challenges.add(1, {"http.response.status_code": exc.status_code, "error.type": exc.error or ""})
    metadata_url = f"{settings.public_url}/.well-known/oauth-protected-resource/mcp"
    parts = []
    if exc.error:
        parts.append(f'error="{exc.error}"')
    if exc.description:
        parts.append(f'error_description="{exc.description}"')
    parts.append(f'resource_metadata="{metadata_url}"')
    parts.append(f'scope="{ALL_SCOPES}"')
    body: dict[str, str] = {"error": exc.error or "unauthorized"}
    if exc.description:
        body["error_description"] = exc.description
    return JSONResponse(
        body,
        status_code=exc.status_code,
        headers={
            "WWW-Authenticate": "Bearer " + ", ".join(parts),
            "Cache-Control": "no-store",
            "Vary": "Authorization",
        },
    )


def _bearer(header: str | None) -> str | None:
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise McpChallenge(401, error="invalid_request", description="use a Bearer token")
    return token


def demand_scopes(auth: AuthContext, needed: frozenset[str]) -> None:
    """403 insufficient_scope naming what is missing (RFC 6750 §3.1), so a client steps up."""
    missing = needed - auth.scopes
    if missing:
        raise McpChallenge(
            403,
            error="insufficient_scope",
            description=f"this needs the scope {' '.join(sorted(missing))}",
        )


async def authenticate(
    resource: ResourceServices,
    authorization: str | None,
    needed: frozenset[str] = frozenset({BASE_SCOPE}),
) -> AuthContext:
    """The one place a bearer token becomes an AuthContext (/mcp and `McpAuth` use it).

    Every call checks the signature (or finds this exact token already verified), iss, aud,
    exp/nbf, revocation and the scopes; raises McpChallenge when any check fails.
    """
    token = _bearer(authorization)
    if token is None:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all.
        raise McpChallenge(401)
    try:
        claims = await resource.token_verifier.verify(token)
        user_id, grant_id = claims.ids
    except (InvalidAccessToken, ValueError) as exc:
        description = str(exc) if isinstance(exc, InvalidAccessToken) else "invalid token"
        raise McpChallenge(401, error="invalid_token", description=description) from exc
    # RevocationUnknown (the issuer cannot be asked) propagates: a 503, not a 401, so that a
    # client keeps its tokens and retries.
    if not await resource.revocation_check.allows(token, claims):
        raise McpChallenge(
            401, error="invalid_token", description="the grant was revoked or the user disabled"
        )
    user = await resource.directory.user(user_id)
    client = await resource.directory.client(claims.client_id)
    if user is None or client is None:
        raise McpChallenge(401, error="invalid_token", description="unknown user or client")
    auth = AuthContext(
        user=user,
        client=client,
        scopes=claims.scope_set,
        grant_id=grant_id,
        token_id=claims.token_id,
        expires_at=claims.expires_at,
    )
    demand_scopes(auth, needed)
    return auth


async def mcp_auth(request: Request, services: ServicesDep) -> AuthContext:
    """The dependency behind `McpAuth`: the request's bearer token, with the scope `mcp`."""
    return await authenticate(services.resource(), request.headers.get("authorization"))


McpAuth = Annotated[AuthContext, Depends(mcp_auth)]
