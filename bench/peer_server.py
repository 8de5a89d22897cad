"""The peer: a bare MCP SDK 2.x server, stateless Streamable HTTP, with the SDK's own auth.

`MCPServer(token_verifier=..., auth=AuthSettings(...))` makes the SDK install its
BearerAuthBackend, RequireAuthMiddleware and AuthContextMiddleware; the TokenVerifier checks the
JWT exactly as bench/common.py says. One tool, `whoami`, answering from the token.

    python bench/peer_server.py --port 8102 --jwks jwks.json --issuer URL --audience URL/mcp
"""

from __future__ import annotations

import argparse

from common import JwtChecker, serve
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
    def __init__(self, checker: JwtChecker) -> None:
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
    checker = JwtChecker(args.jwks, issuer=args.issuer, audience=args.audience)
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

    @server.tool(name="whoami", description="Who the token belongs to.")
    async def whoami(ctx: Context) -> WhoAmI:
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


def main() -> None:
    serve(build, default_port=8102)


if __name__ == "__main__":
    main()
