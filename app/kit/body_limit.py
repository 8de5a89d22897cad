"""Refuse request bodies over a limit before anything reads them into memory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.kit.asgi import TrackedSend, send_whole


class BodyTooLarge(Exception):
    """A body over the limit: declared by Content-Length, or seen while streaming it."""


async def read_body(request: Request, *, max_bytes: int) -> bytes:
    """The whole body, refused with BodyTooLarge as soon as it passes `max_bytes` (for an
    endpoint that answers the refusal in its own format, as /mcp does with JSON-RPC)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # ClientDisconnect when the client went away
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


class BodyLimit:
    """413 for bodies over `max_bytes` (declared or streamed), except on `skip` paths.

    Forms and registration requests are small; without a cap, one large POST would be buffered
    whole by the form parser before any handler could say no.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, skip: frozenset[str]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.skip:
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await _too_large(send)
                    return
        seen = 0
        tracked = TrackedSend(send)

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, tracked)
        except BodyTooLarge:
            if not tracked.started:
                await _too_large(send)


async def _too_large(send: Send) -> None:
    body = b'{"error":"invalid_request","error_description":"the request body is too large"}'
    await send_whole(
        send, 413, body, content_type=b"application/json", extra=(b"connection", b"close")
    )
