"""Asking the client for input from inside a tool, prompt or resource, on either generation.

One call (`gather`) takes the requests a handler needs answered (elicitation, sampling, roots)
and returns the answers. How they travel depends on the negotiated protocol:

- 2026-07-28 (SEP-2322, "Multi Round-Trip Requests"): the server answers the request with an
  `InputRequiredResult` ("resultType": "input_required") carrying `inputRequests` and a
  `requestState`; the client fulfils them and retries the same request with `inputResponses`
  and the echoed `requestState`. `gather` raises `InputRequired`, which `GatehouseMCP` turns into
  that result. Answers from earlier rounds ride in `requestState`, which the SDK's
  `RequestStateBoundary` seals (AES-256-GCM under a key derived from SECRET_KEY) and binds to the
  method, the tool/prompt/resource name, a digest of its arguments, the audience (our resource),
  the calling user and client, and an expiry. The spec: "Servers MUST treat requestState as
  untrusted input... and MUST validate it"; a tampered or foreign state answers -32602.
- 2025-11-25 and earlier: a standalone server-to-client request (`elicitation/create`,
  `sampling/createMessage`, `roots/list`) on the POST's SSE stream, answered on the session.

A client that did not declare the capability a request needs gets -32021
(SEP-2575, "Missing Required Capabilities": the server MUST return -32021 with the
`requiredCapabilities` it needs) instead of a request it cannot answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from mcp.server.mcpserver import Context
from mcp.shared.exceptions import MCPError, NoBackChannelError
from mcp_types import (
    INVALID_PARAMS,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    ClientCapabilities,
    CreateMessageRequest,
    CreateMessageResult,
    ElicitRequest,
    ElicitResult,
    InputRequest,
    InputRequiredResult,
    InputResponse,
    ListRootsRequest,
    ListRootsResult,
)
from mcp_types.version import is_version_at_least
from pydantic import ValidationError

INPUT_REQUIRED_VERSION = "2026-07-28"
CAPABILITY_OF = {
    "elicitation/create": "elicitation",
    "sampling/createMessage": "sampling",
    "roots/list": "roots",
}


class InputRequired(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by `gather` on 2026-07-28; the server answers with `result` instead."""

    def __init__(self, result: InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


def uses_input_required(protocol_version: str | None) -> bool:
    return protocol_version is not None and is_version_at_least(
        protocol_version, INPUT_REQUIRED_VERSION
    )


def declared(capabilities: ClientCapabilities | None, name: str) -> bool:
    """Whether the client declared the capability `name` (elicitation, sampling, roots)."""
    if capabilities is None:
        return False
    value = getattr(capabilities, name, None)
    if value is None and capabilities.model_extra:
        value = capabilities.model_extra.get(name)
    return value is not None


def missing_capability(names: list[str], *, what: str) -> MCPError:
    """The SEP-2575 -32021 error naming the capabilities `what` needs."""
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message=f"{what} needs the client capability {', '.join(names)}, which was not declared",
        data={"requiredCapabilities": {name: {} for name in names}},
    )


def require_capabilities(ctx: Context, names: tuple[str, ...], *, what: str) -> None:
    capabilities = ctx.client_capabilities
    absent = [name for name in names if not declared(capabilities, name)]
    if absent:
        raise missing_capability(absent, what=what)


_RESULT_TYPES: dict[str, type[InputResponse]] = {
    "elicitation/create": ElicitResult,
    "sampling/createMessage": CreateMessageResult,
    "roots/list": ListRootsResult,
}


def _earlier_answers(ctx: Context) -> dict[str, Any]:
    """The answers carried in requestState, verified and unsealed by the SDK's boundary before
    the handler runs (a tampered, expired or foreign state never gets here: -32602)."""
    state = ctx.request_state
    try:
        loaded = json.loads(state) if state else {}
    except ValueError:
        loaded = {}
    answers = loaded.get("answers") if isinstance(loaded, dict) else None
    return answers if isinstance(answers, dict) else {}


def _parsed(key: str, request: InputRequest, raw: object) -> InputResponse:
    result_type = _RESULT_TYPES[request.method]
    try:
        if isinstance(raw, result_type):
            return raw
        payload = raw.model_dump(by_alias=True, mode="json") if hasattr(raw, "model_dump") else raw
        return result_type.model_validate(payload, by_name=False)
    except ValidationError as exc:
        raise MCPError(
            code=INVALID_PARAMS,
            message=f"inputResponses[{key!r}] is not a valid {request.method} result",
        ) from exc


async def gather(ctx: Context, requests: Mapping[str, InputRequest]) -> dict[str, InputResponse]:
    """The client's answers to `requests`, keyed as given (see the module docstring)."""
    needed = sorted({CAPABILITY_OF[r.method] for r in requests.values()})
    require_capabilities(ctx, tuple(needed), what="this request")
    if uses_input_required(ctx.protocol_version):
        return _gather_in_rounds(ctx, requests)
    return await _gather_by_request(ctx, requests)


def _gather_in_rounds(
    ctx: Context, requests: Mapping[str, InputRequest]
) -> dict[str, InputResponse]:
    # Keys this handler did not ask for are ignored (SEP-2322: servers SHOULD ignore
    # inputResponses they do not recognise).
    fresh = {
        key: value.model_dump(by_alias=True, mode="json")
        for key, value in (ctx.input_responses or {}).items()
    }
    known = {**_earlier_answers(ctx), **fresh}
    answers = {
        key: _parsed(key, request, known[key]) for key, request in requests.items() if key in known
    }
    if len(answers) == len(requests):
        return answers
    pending = {key: request for key, request in requests.items() if key not in answers}
    # Every answer so far rides along, for the questions the handler asks before this one on
    # the next round; the state is sealed and bound to this user, client, tool and arguments.
    state = json.dumps({"answers": known}, sort_keys=True)
    raise InputRequired(InputRequiredResult(input_requests=pending, request_state=state))


async def _gather_by_request(
    ctx: Context, requests: Mapping[str, InputRequest]
) -> dict[str, InputResponse]:
    from mcp.shared.message import ServerMessageMetadata

    session = ctx.request_context.session
    metadata = ServerMessageMetadata(related_request_id=ctx.request_context.request_id)
    answers: dict[str, InputResponse] = {}
    for key, request in requests.items():
        try:
            answers[key] = await session.send_request(
                request, _RESULT_TYPES[request.method], metadata=metadata
            )
        except NoBackChannelError as exc:
            # Stateless HTTP on the handshake generation: nowhere for the answer to land.
            raise missing_capability(
                [CAPABILITY_OF[request.method]],
                what="this request (the client has no session: initialize declaring it)",
            ) from exc
    return answers


def is_request(value: object) -> bool:
    return isinstance(value, ElicitRequest | CreateMessageRequest | ListRootsRequest)
