"""The MCP conformance suite's server fixtures (`MCP_TOOLSETS=conformance`, tests only).

Every fixture is written with the same public API a deployer's tools use (`GatehouseMCP.tool`,
`call_context(ctx)` and its `progress`, `log`, `ask`, `sample`, `roots`, `gather`), so passing
the suite shows what a deployer's own tools can do. Names and payloads are the suite's
(@modelcontextprotocol/conformance, server scenarios). Content and prompts: conformance_content.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import (
    CreateMessageRequest,
    CreateMessageRequestParams,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequest,
    ListRootsRequest,
    SamplingMessage,
    TextContent,
)
from pydantic import BaseModel, Field

from app.mcp.call import call_context
from app.mcp.models import Note
from app.mcp.server import GatehouseMCP, ToolSet
from app.mcp.tools import conformance_content
from app.oauth.scopes import WRITE_SCOPE

Handler = Callable[..., Awaitable[Any]]
STEP = 0.05  # the suite asks for ~50 ms between notifications

toolset = ToolSet()


class UserResponse(BaseModel):
    username: str = Field(description="User's response")
    email: str = Field(description="User's email address")


class Defaults(BaseModel):
    """SEP-1034: a default for every primitive type."""

    name: str = Field(default="John Doe", description="User name")
    age: int = Field(default=30, description="User age")
    score: float = Field(default=95.5, description="User score")
    status: str = Field(
        default="active",
        description="User status",
        json_schema_extra={"enum": ["active", "inactive", "pending"]},
    )
    verified: bool = Field(default=True, description="Verification status")


class Enums(BaseModel):
    """SEP-1330: the enum shapes."""

    untitledSingle: str = Field(  # noqa: N815 - the suite's field names
        description="Simple enum without titles",
        json_schema_extra={"enum": ["active", "inactive", "pending"]},
    )
    titledSingle: str = Field(  # noqa: N815
        description="Enum with titled options (oneOf)",
        json_schema_extra={
            "oneOf": [
                {"const": "low", "title": "Low Priority"},
                {"const": "medium", "title": "Medium Priority"},
                {"const": "high", "title": "High Priority"},
            ]
        },
    )
    untitledMulti: list[str] = Field(  # noqa: N815
        description="Multi-select without titles",
        json_schema_extra={"items": {"type": "string", "enum": ["read", "write", "execute"]}},
    )
    titledMulti: list[str] = Field(  # noqa: N815
        description="Multi-select with titled options",
        json_schema_extra={
            "items": {
                "anyOf": [
                    {"const": "feature", "title": "New Feature"},
                    {"const": "bug", "title": "Bug Fix"},
                    {"const": "docs", "title": "Documentation"},
                ]
            }
        },
    )
    legacyEnum: str = Field(  # noqa: N815
        description="Legacy enum with enumNames",
        json_schema_extra={
            "enum": ["small", "medium", "large"],
            "enumNames": ["Small Size", "Medium Size", "Large Size"],
        },
    )


async def test_tool_with_logging(ctx: Context) -> str:
    call = call_context(ctx)
    for i, message in enumerate(
        ("Tool execution started", "Tool processing data", "Tool execution completed")
    ):
        if i:
            await asyncio.sleep(STEP)
        await call.log("info", message)
    return "Tool with logging executed successfully"


async def test_tool_with_progress(ctx: Context) -> str:
    call = call_context(ctx)
    for i, done in enumerate((0, 50, 100)):
        if i:
            await asyncio.sleep(STEP)
        await call.progress(done, 100, f"Completed step {done} of 100")
    return "Progress reported: 0, 50, 100 of 100"


async def test_logging_tool(ctx: Context) -> str:
    """2026-07-28: sends nothing unless the request set _meta's logLevel (SEP-2575)."""
    await call_context(ctx).log("info", "a log message from test_logging_tool")
    return "logged"


async def test_streaming_elicitation(ctx: Context) -> str:
    """2026-07-28: asking travels in the result (input_required), never as a request."""
    outcome = await call_context(ctx).ask("Please provide your information", UserResponse)
    return f"action={outcome.action}"


async def test_sampling(ctx: Context, prompt: str) -> str:
    answer = await call_context(ctx).sample(prompt, max_tokens=100)
    text = answer.content.text if isinstance(answer.content, TextContent) else "No response"
    return f"LLM response: {text}"


async def _elicited(ctx: Context, message: str, schema: type[BaseModel], label: str) -> str:
    outcome = await call_context(ctx).ask(message, schema)
    content = outcome.data.model_dump_json() if isinstance(outcome, AcceptedElicitation) else "{}"
    return f"{label}: action={outcome.action}, content={content}"


async def test_elicitation(ctx: Context, message: str) -> str:
    return await _elicited(ctx, message, UserResponse, "User response")


async def test_elicitation_sep1034_defaults(ctx: Context) -> str:
    return await _elicited(ctx, "Please provide user information", Defaults, "Elicitation result")


async def test_elicitation_sep1330_enums(ctx: Context) -> str:
    message = "Please select values using different enum schema types"
    return await _elicited(ctx, message, Enums, "Elicitation completed")


async def test_error_handling() -> str:
    raise ToolError("This tool intentionally returns an error for testing")


async def test_x_mcp_header(
    region: Annotated[
        str,
        Field(
            description="Mirrored into the Mcp-Param-Region header",
            json_schema_extra={"x-mcp-header": "Region"},
        ),
    ] = "<none>",  # noqa: PT028 - a tool parameter, not a pytest fixture
) -> str:
    return f"region={region}"


async def test_missing_capability() -> str:
    return "Client declared sampling capability; proceeding."


def _ask(message: str, field: str, kind: str = "string") -> ElicitRequest:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=schema))


def _sample(text: str, max_tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=text))
    return CreateMessageRequest(
        params=CreateMessageRequestParams(messages=[message], max_tokens=max_tokens)
    )


def _content(answer: object, field: str) -> object:
    return (
        answer.content.get(field) if isinstance(answer, ElicitResult) and answer.content else None
    )


async def test_input_required_result_elicitation(ctx: Context) -> str:
    answers = await call_context(ctx).gather({"user_name": _ask("What is your name?", "name")})
    return f"Hello, {_content(answers['user_name'], 'name') or 'stranger'}!"


async def test_input_required_result_sampling(ctx: Context) -> str:
    question = {"capital_question": _sample("What is the capital of France?", 100)}
    answer = (await call_context(ctx).gather(question))["capital_question"]
    return f"Model said: {answer.content.text if answer.content.type == 'text' else '?'}"


async def test_input_required_result_list_roots(ctx: Context) -> str:
    roots = await call_context(ctx).roots(key="client_roots")
    return f"Client exposed {len(roots)} root(s)."


async def test_input_required_result_request_state(ctx: Context) -> str:
    await call_context(ctx).gather({"confirm": _ask("Please confirm", "ok", "boolean")})
    return "state-ok: confirmation received"


async def test_input_required_result_tampered_state(ctx: Context) -> str:
    await call_context(ctx).gather({"confirm": _ask("Please confirm", "ok", "boolean")})
    return "state-ok: the sealed requestState verified"


async def test_input_required_result_multiple_inputs(ctx: Context) -> str:
    await call_context(ctx).gather(
        {
            "user_name": _ask("What is your name?", "name"),
            "greeting": _sample("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        }
    )
    return "All inputs received."


async def test_input_required_result_multi_round(ctx: Context) -> str:
    call = call_context(ctx)
    first = await call.gather({"step1": _ask("Step 1: What is your name?", "name")})
    second = await call.gather({"step2": _ask("Step 2: What is your favorite color?", "color")})
    return f"{_content(first['step1'], 'name')} likes {_content(second['step2'], 'color')}."


async def test_input_required_result_capabilities(ctx: Context) -> str:
    call = call_context(ctx)
    requests: dict[str, InputRequest] = {}
    if call.supports("sampling"):
        requests["sample"] = _sample("Say hello", 50)
    if call.supports("elicitation"):
        requests["ask"] = _ask("What is your name?", "name")
    answers = await call.gather(requests) if requests else {}
    return json.dumps(sorted(answers))


TOOLS: list[tuple[Handler, tuple[str, ...]]] = [
    (test_tool_with_logging, ()),
    (test_tool_with_progress, ()),
    (test_logging_tool, ()),
    (test_streaming_elicitation, ()),
    (test_sampling, ("sampling",)),
    (test_elicitation, ()),
    (test_elicitation_sep1034_defaults, ()),
    (test_elicitation_sep1330_enums, ()),
    (test_error_handling, ()),
    (test_missing_capability, ("sampling",)),
    (test_x_mcp_header, ()),
    (test_input_required_result_elicitation, ()),
    (test_input_required_result_sampling, ()),
    (test_input_required_result_list_roots, ()),
    (test_input_required_result_request_state, ()),
    (test_input_required_result_tampered_state, ()),
    (test_input_required_result_multiple_inputs, ()),
    (test_input_required_result_multi_round, ()),
    (test_input_required_result_capabilities, ()),
]


# SEP-1613/SEP-2106: the JSON Schema 2020-12 vocabulary a tool's inputSchema may use, advertised
# unchanged in tools/list.
SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


@toolset.tool(
    title="Slow note",
    description="Test fixture: waits, then writes a note (cancelled if the client leaves)",
    scopes=(WRITE_SCOPE,),
    streaming=True,
    read_only=False,
)
async def slow_note(ctx: Context, title: str, seconds: float = 2.0) -> str:
    """Not a suite fixture: a slow tool (streaming=True) that writes a note only if it is not
    cancelled first, so tests can see that a client going away stops it."""
    call = call_context(ctx)
    await asyncio.sleep(min(seconds, 10.0))
    async with call.session() as session, session.begin():
        session.add(Note(user_id=call.auth.user.id, title=title, body=""))
    return "written"


@toolset.tool(
    title="JSON Schema 2020-12",
    description="Conformance fixture: a 2020-12 inputSchema, advertised unchanged",
    input_schema=SCHEMA_2020_12,
    read_only=True,
)
async def json_schema_2020_12_tool() -> str:
    return "json_schema_2020_12_tool"


def register(server: GatehouseMCP) -> None:
    toolset.register(server)
    for fn, requires in TOOLS:
        server.tool(
            name=fn.__name__,
            title=fn.__name__,
            description=f"Conformance fixture {fn.__name__}",
            requires=requires,
            read_only=True,
        )(fn)
    conformance_content.register(server)
