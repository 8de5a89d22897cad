"""The peers: a bare MCP SDK 2.x server, stateless Streamable HTTP, with the SDK's own auth.

`MCPServer(token_verifier=..., auth=AuthSettings(...))` makes the SDK install its
BearerAuthBackend, RequireAuthMiddleware and AuthContextMiddleware. One tool, `whoami`,
answering from the token.

Two configurations:

- the **fair peer** (default), what a careful developer deploys for speed: `stateless_http=True`
  with `json_response=True`, an `async` tool returning a plain dict, and an ES256
  `TokenVerifier` written with PyJWT (`bench/common.py`, `PyJwtChecker`);
- `--sse`: the SDK's default answer shape (every call an SSE stream), a tool that returns a
  pydantic model, and the joserfc checker. Kept as a second, labelled peer (`peer-sse`).

    python bench/peer_server.py --port 8102 --jwks jwks.json --issuer URL --audience URL/mcp [--sse]
"""

from __future__ import annotations

import argparse
from typing import Any

from common import JwtChecker, PyJwtChecker, serve
from mcp.server import MCPServer
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context
from pydantic import BaseModel


class WhoAmI(BaseModel):
    user_id: str
    client_id: str
    scopes: list[str]
    protocol_version: str | None


class JwtTokenVerifier:
    def __init__(self, checker: JwtChecker | PyJwtChecker) -> None:
        self.checker = checker

    async def verify_token(self, token: str) -> AccessToken | None:
        claims = self.checker.verify(token)
        if claims is None:
            return None
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=self.checker.audience,
            subject=str(claims["sub"]),
            claims=claims,
        )


def build(args: argparse.Namespace) -> object:
    checker_type = JwtChecker if args.sse else PyJwtChecker
    checker = checker_type(args.jwks, issuer=args.issuer, audience=args.audience)
    server = MCPServer(
        name="peer",
        token_verifier=JwtTokenVerifier(checker),
        auth=AuthSettings(
            issuer_url=args.issuer,
            resource_server_url=args.audience,
            required_scopes=["mcp"],
            validate_token_resource=True,
        ),
    )

    if args.sse:

        @server.tool(name="whoami", description="Who the token belongs to.")
        async def whoami_model(ctx: Context) -> WhoAmI:
            token = get_access_token()
            assert token is not None
            request = ctx.request_context.request
            version = request.headers.get("mcp-protocol-version") if request is not None else None
            return WhoAmI(
                user_id=token.subject or "",
                client_id=token.client_id,
                scopes=sorted(token.scopes),
                protocol_version=version,
            )

        return server.streamable_http_app(stateless_http=True)

    @server.tool(name="whoami", description="Who the token belongs to.")
    async def whoami(ctx: Context) -> dict[str, Any]:
        token = get_access_token()
        assert token is not None
        request = ctx.request_context.request
        return {
            "user_id": token.subject or "",
            "client_id": token.client_id,
            "scopes": sorted(token.scopes),
            "protocol_version": request.headers.get("mcp-protocol-version") if request else None,
        }

    return server.streamable_http_app(stateless_http=True, json_response=True)


def main() -> None:
    serve(build, default_port=8102, flags=("--sse",))


if __name__ == "__main__":
    main()
