"""What every /mcp answer carries: private caching headers, and JSON-RPC errors as the SDK writes
them (an error response with no id, as Streamable HTTP allows)."""

from __future__ import annotations

from fastapi.responses import JSONResponse
from starlette.types import Message, Send

# Every /mcp answer depends on who asks (claude.ai caches tool lists): never stored by a cache,
# and varying on the credential for any cache that ignores no-store.
PRIVATE_HEADERS = {"Cache-Control": "no-store", "Vary": "Authorization"}
_NO_STORE = (b"cache-control", b"no-store")
_NO_STORE_STREAM = (b"cache-control", b"no-store, no-transform")
_VARY = (b"vary", b"Authorization")


def _private(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The SDK's response headers with Cache-Control: no-store and Vary: Authorization; an SSE
    stream keeps no-transform, so no proxy buffers or compresses it."""
    kept = [h for h in headers if h[0].lower() != b"cache-control"]
    stream = any(
        h[1].startswith(b"text/event-stream") for h in kept if h[0].lower() == b"content-type"
    )
    kept.append(_NO_STORE_STREAM if stream else _NO_STORE)
    kept.append(_VARY)
    return kept


def jsonrpc_error(
    status_code: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}},
        status_code=status_code,
        headers=PRIVATE_HEADERS if headers is None else PRIVATE_HEADERS | headers,
    )


def method_not_allowed() -> JSONResponse:
    # RFC 9110 §15.5.6: a 405 MUST carry Allow.
    message = "Method Not Allowed: this endpoint takes POST"
    return jsonrpc_error(405, -32600, message, headers={"Allow": "POST"})


def private_send(send: Send) -> Send:
    """`send`, with the SDK's response headers made private (`_private`)."""

    async def send_private(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = _private(list(message.get("headers", ())))
        await send(message)

    return send_private
