"""2026-07-28 requests answered as JSON, without the session manager's second pass.

The SDK's `handle_modern_request` (reached through `StreamableHTTPSessionManager.handle_request`)
builds its own Request, waits for the body again, parses it again and then runs its JSON branch.
By the time McpEndpoint hands a request on, all of that has happened once already. `answer` runs
the rest of the SDK's JSON branch, in the SDK's order and with the SDK's own pieces (its ladder
classifier, its `Mcp-Param-*` check, its dispatch context, `serve_one` and its writer), so the
bytes on the wire are the SDK's.

It takes only the common case, a well-formed request at a served version. Anything the SDK would
refuse or treat specially (a notification, a batch, a bad envelope, `subscriptions/listen`, a
duplicated or mismatched routing header, a bad `Mcp-Param-*` header, a content type or Accept the
transport refuses) answers `False`, and the caller hands the request to the SDK unchanged, which
gives the same answer it always did. tests/mcp/test_modern_equivalence.py holds the two to the
same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, TypeVar

from mcp.server import _streamable_http_modern as sdk_modern
from mcp.server.connection import Connection
from mcp.server.lowlevel.server import Server
from mcp.server.runner import modern_error_data, serve_one
from mcp.server.streamable_http import check_accept_headers
from mcp.shared.inbound import (
    InboundLadderRejection,
    InboundModernRoute,
    classify_inbound_request,
    find_duplicated_routing_header,
)
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp.shared.message import ServerMessageMetadata
from mcp.shared.transport_context import TransportContext
from mcp_types import JSONRPCError, JSONRPCRequest, JSONRPCResponse, RequestId
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.requests import Request
from starlette.types import Send

from app.mcp.lean import WIRE_JSON, LeanKernel

LISTEN = "subscriptions/listen"

State = TypeVar("State")  # the lifespan state of the SDK server


def is_modern(protocol_version: str | None) -> bool:
    """The SDK's own routing rule: any version header that is not a handshake one."""
    return protocol_version is not None and protocol_version not in HANDSHAKE_PROTOCOL_VERSIONS


async def answer(
    server: Server[State],
    lifespan_state: State,
    request: Request,
    message: object,
    send: Send,
    *,
    lean: LeanKernel | None = None,
) -> bool:
    """Answer `message` as the SDK's JSON branch would, or return False (nothing sent).

    `lean`, when given, answers the plain `tools/call` and `tools/list` requests it takes in
    place of `serve_one` (app/mcp/lean.py), after every check here has passed."""
    admitted = await _admit(server, lifespan_state, request, message)
    if admitted is None:
        return False
    req, verdict = admitted
    connection = Connection.from_envelope(
        verdict.protocol_version, verdict.client_info, verdict.client_capabilities
    )
    dctx = sdk_modern._SingleExchangeDispatchContext(
        transport=TransportContext(
            kind="streamable-http", can_send_request=False, headers=request.headers
        ),
        request_id=req.id,
        message_metadata=ServerMessageMetadata(request_context=request),
        progress_token=progress_token_from_params(req.params),
    )
    params = req.params
    try:
        if lean is not None and lean.takes(req.method, params, verdict.protocol_version):
            result = await lean.serve(
                dctx, req.method, params, connection=connection, lifespan_state=lifespan_state
            )
        else:
            result = await serve_one(
                server,
                dctx,
                req.method,
                params,
                connection=connection,
                lifespan_state=lifespan_state,
            )
    except Exception as exc:  # as the SDK's _to_jsonrpc_response: the ladder maps it
        error = JSONRPCError(jsonrpc="2.0", id=req.id, error=modern_error_data(exc))
        await sdk_modern._write(error, request.scope, request.receive, send)
        return True
    await _write_result(req.id, result, request, send)
    return True


async def _admit(
    server: Server[State], lifespan_state: State, request: Request, message: object
) -> tuple[JSONRPCRequest, InboundModernRoute] | None:
    """The request and its route, when the SDK's JSON branch would dispatch it (else None)."""
    content_type = request.headers.get("content-type")
    if content_type is None or not content_type.lower().startswith("application/json"):
        return None
    has_json, _ = check_accept_headers(request)
    if not has_json or not isinstance(message, dict) or "id" not in message:
        return None
    try:
        req = JSONRPCRequest.model_validate(message)
    except ValidationError:
        return None
    pairs = request.headers.items()
    if req.method == LISTEN or find_duplicated_routing_header(pairs):
        return None
    # The ladder reads three headers, none of them repeated (checked just above), so a dict of
    # the pairs (last one kept) reads as the SDK's dict(request.headers) (first one kept).
    verdict = classify_inbound_request(message, headers=dict(pairs))
    if isinstance(verdict, InboundLadderRejection):
        return None
    if _may_carry_params(req, pairs) and await sdk_modern._mcp_param_rejection(  # noqa: SLF001
        server, request, req, verdict, lifespan_state
    ):
        return None
    return req, verdict


def _may_carry_params(req: JSONRPCRequest, pairs: Iterable[tuple[str, str]]) -> bool:
    """False where the SDK's `_mcp_param_rejection` answers None before it looks anything up:
    a request that is not a `tools/call`, or one with no arguments and no `Mcp-Param-*` header
    (header names are lower case: ASGI's, and the SDK's own test)."""
    if req.method != "tools/call":
        return False
    if (req.params or {}).get("arguments"):
        return True
    prefix = sdk_modern._MCP_PARAM_PREFIX_LOWER  # noqa: SLF001 - the SDK's own test, as it is
    return any(name.startswith(prefix) for name, _ in pairs)


async def _write_result(
    request_id: RequestId, result: dict[str, Any] | str, request: Request, send: Send
) -> None:
    """The SDK's _write of a JSONRPCResponse: model_dump(mode="json", by_alias=True,
    exclude_none=True) leaves the result dict as it is (serve_one already shaped it for the
    wire), so the envelope is written directly; a result already written as JSON text (a
    listing, app/mcp/lean.py) is the same dump's text, and json.dumps of the envelope is the
    concatenation of its members' dumps. tests/mcp/test_modern_equivalence.py holds it to the
    SDK's bytes."""
    if isinstance(result, str):
        content = f'{{"jsonrpc":"2.0","id":{json.dumps(request_id)},"result":{result}}}'
    else:
        envelope = {"jsonrpc": "2.0", "id": request_id, "result": result}
        try:
            content = WIRE_JSON.encode(envelope)
        except (TypeError, ValueError):  # not plain JSON (a NaN, a datetime): the SDK's writer
            reply = JSONRPCResponse(jsonrpc="2.0", id=request_id, result=result)
            await sdk_modern._write(reply, request.scope, request.receive, send)
            return
    # What Response(content, status_code=200, media_type="application/json") sends.
    body = content.encode()
    length = str(len(body)).encode("latin-1")
    headers = [(b"content-length", length), (b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
