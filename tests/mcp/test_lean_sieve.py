"""`plain_call_result` (app/mcp/lean.py) is the SDK's 2026-07-28 result sieve
(`serialize_server_result`) for every CallToolResult it accepts, key order included, and
accepts nothing the sieve would shape differently."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mcp_types import (
    Annotations,
    CallToolResult,
    ImageContent,
    InputRequiredResult,
    TextContent,
)
from mcp_types.methods import serialize_server_result

from app.mcp.lean import plain_call_result

MODERN = "2026-07-28"


def _text(text: str) -> TextContent:
    return TextContent(type="text", text=text)


STRUCTURED: list[Any] = [
    {"a": None, "b": [None, 1.5, {"c": None}], "d": "x"},
    {"nan": float("nan"), "inf": float("inf"), "big": 10**30, "neg": -0.0},
    {"text": '\u00fc\u2028\x00\ud800 "quoted" \\', "empty": {}, "list": []},
    {"bool": True, "int": 1, "float": 1.0, "nested": [[[]]]},
]
PLAIN: dict[str, CallToolResult] = {
    "one text block": CallToolResult(content=[_text("hi")]),
    "no content": CallToolResult(content=[]),
    "several blocks": CallToolResult(content=[_text("a"), _text(""), _text("\n\t")]),
    "an error": CallToolResult(content=[_text("it broke")], is_error=True),
    **{
        f"structured content {i}": CallToolResult(content=[_text("s")], structured_content=value)
        for i, value in enumerate(STRUCTURED)
    },
}
NOT_PLAIN: dict[str, CallToolResult | InputRequiredResult] = {
    "an image": CallToolResult(
        content=[ImageContent(type="image", data="AAAA", mime_type="image/png")]
    ),
    "annotations": CallToolResult(
        content=[TextContent(type="text", text="a", annotations=Annotations(priority=0.5))]
    ),
    "a block's _meta": CallToolResult(content=[TextContent(type="text", text="a", _meta={"x": 1})]),
    "the result's _meta": CallToolResult(content=[_text("a")], _meta={"com.example/x": 1}),
    "input required": InputRequiredResult(request_state="s"),
}


def _dumped(result: CallToolResult | InputRequiredResult) -> dict[str, Any]:
    """As ServerRunner._dump_result dumps a handler's result."""
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


@pytest.mark.parametrize("case", PLAIN)
def test_a_plain_result_is_shaped_as_the_sieve_shapes_it(case: str) -> None:
    dumped = _dumped(PLAIN[case])
    ours = plain_call_result(dumped)
    assert ours is not None
    sieved = serialize_server_result("tools/call", MODERN, dumped)
    assert json.dumps(ours) == json.dumps(sieved)  # order and values, as the wire shows them


@pytest.mark.parametrize("case", NOT_PLAIN)
def test_anything_else_is_left_to_the_sdk(case: str) -> None:
    assert plain_call_result(_dumped(NOT_PLAIN[case])) is None


@pytest.mark.parametrize(
    "dumped",
    [
        {"content": [{"type": "text", "text": "a"}], "resultType": "input_required"},
        {"content": [{"type": "text", "text": "a"}], "resultType": "complete", "extra": 1},
        {"content": [{"type": "text", "text": 5}], "resultType": "complete"},
        {"content": [{"type": "text", "text": "a"}], "isError": "yes", "resultType": "complete"},
        {"content": "a", "resultType": "complete"},
        {"content": [{"type": "image", "text": "a"}], "resultType": "complete"},
    ],
)
def test_a_mapping_the_sieve_would_change_or_refuse_is_not_plain(dumped: dict[str, Any]) -> None:
    assert plain_call_result(dumped) is None
