"""The conformance fixtures for content, resources, prompts and completions (see conformance)."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import UserMessage
from mcp_types import (
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmptyResult,
    SubscribeRequestParams,
    UnsubscribeRequestParams,
)

from app.mcp import content
from app.mcp.call import call_context
from app.mcp.completions import prefix_completer
from app.mcp.content import Content
from app.mcp.server import GatehouseMCP

# A 1x1 PNG and a tiny WAV, as the suite suggests.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
WAV = base64.b64decode("UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=")


async def test_simple_text() -> str:
    return "This is a simple text response for testing."


async def test_image_content() -> list[Content]:
    return [content.image(PNG, "image/png")]


async def test_audio_content() -> list[Content]:
    return [content.audio(WAV, "audio/wav")]


async def test_embedded_resource() -> list[Content]:
    return [content.embedded("test://embedded-resource", "This is an embedded resource content.")]


async def test_multiple_content_types() -> list[Content]:
    data = json.dumps({"test": "data", "value": 123})
    return [
        content.text("Multiple content types test:"),
        content.image(PNG, "image/png"),
        content.embedded("test://mixed-content-resource", data, "application/json"),
    ]


async def static_text() -> str:
    return "This is the content of the static text resource."


async def static_binary() -> bytes:
    return PNG


async def template_data(id: str) -> str:  # noqa: A002 - the template's parameter name
    return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})


async def watched() -> str:
    return "Watched resource content"


async def test_simple_prompt() -> list[UserMessage]:
    return [UserMessage(content=content.text("This is a simple prompt for testing."))]


async def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
    text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
    return [UserMessage(content=content.text(text))]


async def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:  # noqa: N803
    return [
        UserMessage(
            content=content.embedded(resourceUri, "Embedded resource content for testing.")
        ),
        UserMessage(content=content.text("Please process the embedded resource above.")),
    ]


async def test_prompt_with_image() -> list[UserMessage]:
    return [
        UserMessage(content=content.image(PNG, "image/png")),
        UserMessage(content=content.text("Please analyze the image above.")),
    ]


async def test_input_required_result_prompt(ctx: Context) -> list[UserMessage]:
    schema = {
        "type": "object",
        "properties": {"context": {"type": "string"}},
        "required": ["context"],
    }
    question = ElicitRequest(
        params=ElicitRequestFormParams(
            message="What context should the prompt use?", requested_schema=schema
        )
    )
    answer = (await call_context(ctx).gather({"user_context": question}))["user_context"]
    given = (
        answer.content.get("context")
        if isinstance(answer, ElicitResult) and answer.content
        else "?"
    )
    return [UserMessage(content=content.text(f"Use the following context: {given}"))]


Handler = Callable[..., Awaitable[Any]]
CONTENT_TOOLS: list[Handler] = [
    test_simple_text,
    test_image_content,
    test_audio_content,
    test_embedded_resource,
    test_multiple_content_types,
]
RESOURCES: list[tuple[str, str, Handler, str]] = [
    ("test://static-text", "static-text", static_text, "text/plain"),
    ("test://static-binary", "static-binary", static_binary, "image/png"),
    ("test://template/{id}/data", "template", template_data, "application/json"),
    ("test://watched-resource", "watched-resource", watched, "text/plain"),
]
PROMPTS: list[Handler] = [
    test_simple_prompt,
    test_prompt_with_arguments,
    test_prompt_with_embedded_resource,
    test_prompt_with_image,
    test_input_required_result_prompt,
]
SUGGESTIONS = ["paris", "park", "party", "pear", "plum"]


async def _acknowledged(_ctx: ServerRequestContext[Any, Any], _params: object) -> EmptyResult:
    # The watched resource never changes, so a subscription to it never has anything to send.
    return EmptyResult()


def register(server: GatehouseMCP) -> None:
    # resources/subscribe and unsubscribe (handshake generation), for the suite's
    # test://watched-resource; MCPServer has no public hook for these methods.
    lowlevel = server.server._lowlevel_server  # noqa: SLF001
    lowlevel.add_request_handler("resources/subscribe", SubscribeRequestParams, _acknowledged)
    lowlevel.add_request_handler("resources/unsubscribe", UnsubscribeRequestParams, _acknowledged)
    for fn in CONTENT_TOOLS:
        name = fn.__name__
        server.tool(
            name=name, title=name, description=f"Conformance fixture {name}", read_only=True
        )(fn)
    for uri, name, resource, mime_type in RESOURCES:
        server.resource(
            uri,
            name=name,
            title=name,
            description=f"Conformance fixture {uri}",
            mime_type=mime_type,
            complete={"id": prefix_completer(["1", "2", "123"])},
        )(resource)
    for prompt in PROMPTS:
        name = prompt.__name__
        complete = {"arg1": prefix_completer(SUGGESTIONS), "arg2": prefix_completer(SUGGESTIONS)}
        server.prompt(
            name=name, title=name, description=f"Conformance fixture {name}", complete=complete
        )(prompt)
