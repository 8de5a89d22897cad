"""A small local HTTP proxy that adds `Authorization: Bearer <token>` to every request.

The conformance suite's server runner has no way to send a header of our choosing; this proxy
sits between it and a live Gatehouse so the suite exercises /mcp behind the real bearer check.
Responses (including SSE streams) are relayed as they arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade"}


class BearerProxy:
    def __init__(self, upstream: str, token: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.token = token
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(120, connect=10))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        # Host and Origin pass through unchanged, so the suite's DNS-rebinding probes reach
        # Gatehouse's own checks (the server is told to accept this proxy's host:port). RFC 9110
        # §5.5: surrounding whitespace is not part of a field value (httpx refuses it).
        headers = [
            (k, v.strip()) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP
        ]
        headers.append(("authorization", f"Bearer {self.token}"))
        upstream = self.client.build_request(
            request.method,
            self.upstream
            + request.url.path
            + (f"?{request.url.query}" if request.url.query else ""),
            headers=headers,
            content=await request.body(),
        )
        response = await self.client.send(upstream, stream=True)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in response.aiter_raw():
                    yield chunk
            finally:
                await response.aclose()

        kept = {
            k: v
            for k, v in response.headers.items()
            if k.lower() not in HOP_BY_HOP | {"content-length", "content-encoding"}
        }
        await StreamingResponse(relay(), status_code=response.status_code, headers=kept)(
            scope, receive, send
        )


@contextlib.asynccontextmanager
async def bearer_proxy(upstream: str, token: str, *, port: int) -> AsyncIterator[str]:
    """Serve the proxy on 127.0.0.1:`port` in this event loop; yields its base URL."""
    proxy = BearerProxy(upstream, token)
    config = uvicorn.Config(proxy, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await proxy.client.aclose()
