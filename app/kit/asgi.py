"""Plain ASGI pieces for the middleware that answer before (or instead of) the app."""

from __future__ import annotations

from starlette.types import Message, Send


class TrackedSend:
    """`send`, remembering whether the response has started (after that, no other can be sent)."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


async def send_whole(
    send: Send, status: int, body: bytes, *, content_type: bytes, extra: tuple[bytes, bytes]
) -> None:
    """One complete response: status line, content type, length and one more header, then body."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
