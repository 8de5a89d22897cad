"""The ceiling: a raw Starlette endpoint that verifies the same JWT and echoes JSON-RPC.

No MCP machinery at all: bearer check, JSON parse, a whoami-shaped result. Nothing real can be
faster on this stack, so it shows how much of the budget is HTTP + JWT alone. With `--no-verify`
(target `ceiling-raw`) the token's claims are decoded once at start-up and every request only
compares the bearer string: the HTTP + JSON floor, with no signature check at all.

    python bench/ceiling_server.py --port 8103 --jwks jwks.json --issuer URL --audience URL/mcp \
        [--no-verify]
"""

from __future__ import annotations

import argparse
import json

from common import JwtChecker, serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build(args: argparse.Namespace) -> Starlette:
    checker = JwtChecker(args.jwks, issuer=args.issuer, audience=args.audience)
    known: dict[str, dict[str, object] | None] = {}

    def verify(token: str) -> dict[str, object] | None:
        if not args.no_verify:
            return checker.verify(token)
        if token not in known and not known:  # the first token, verified once
            known[token] = checker.verify(token)
        return known.get(token)

    async def mcp(request: Request) -> Response:
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        claims = verify(token.strip()) if scheme.lower() == "bearer" else None
        if claims is None or "mcp" not in str(claims.get("scope", "")).split():
            return JSONResponse({"error": "invalid_token"}, 401)
        try:
            message = json.loads(await request.body())
        except ValueError:
            return JSONResponse({"jsonrpc": "2.0", "id": None, "error": {"code": -32700}}, 400)
        me = {
            "user_id": claims["sub"],
            "client_id": claims.get("client_id"),
            "scopes": sorted(str(claims.get("scope", "")).split()),
            "protocol_version": request.headers.get("mcp-protocol-version"),
        }
        result = {
            "content": [{"type": "text", "text": json.dumps(me)}],
            "structuredContent": me,
            "isError": False,
        }
        return JSONResponse({"jsonrpc": "2.0", "id": message.get("id"), "result": result})

    return Starlette(routes=[Route("/mcp", mcp, methods=["POST"])])


def main() -> None:
    serve(build, default_port=8103, flags=("--no-verify",))


if __name__ == "__main__":
    main()
