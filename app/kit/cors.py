"""CORS for the public OAuth endpoints: any origin, no credentials (pages get none)."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class PublicCors:
    """Answer preflights and add CORS headers on an exact set of paths.

    With `origins=None` any origin is allowed: these endpoints take no cookies, so
    `Access-Control-Allow-Origin: *` without credentials lets browser-based MCP clients discover,
    register and get tokens without any ambient authority riding along. With a set of origins
    (the /mcp endpoint), only those are echoed back; never with credentials.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        paths: frozenset[str],
        allow_headers: str = "Authorization, Content-Type, MCP-Protocol-Version",
        expose_headers: str = "WWW-Authenticate",
        methods: str = "GET, POST, OPTIONS",
        origins: frozenset[str] | None = None,
    ) -> None:
        self.app = app
        self.paths = paths
        self.origins = origins
        self.allow_headers = allow_headers
        self.expose_headers = expose_headers
        self.methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        if origin is None:
            await self.app(scope, receive, send)
            return
        if self.origins is None:
            allow = "*"
        elif origin.rstrip("/").lower() in self.origins:
            allow = origin
        else:
            allow = ""
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            if not allow:
                await send({"type": "http.response.start", "status": 403, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
            await send(
                {
                    "type": "http.response.start",
                    "status": 204,
                    "headers": [
                        (b"access-control-allow-origin", allow.encode("latin-1")),
                        (b"access-control-allow-methods", self.methods.encode()),
                        (b"access-control-allow-headers", self.allow_headers.encode()),
                        (b"access-control-max-age", b"86400"),
                        (b"vary", b"Origin"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start" and allow:
                out = MutableHeaders(scope=message)
                out["Access-Control-Allow-Origin"] = allow
                out["Access-Control-Expose-Headers"] = self.expose_headers
                if allow != "*":
                    out.append("Vary", "Origin")
            await send(message)

        await self.app(scope, receive, send_with_cors)
