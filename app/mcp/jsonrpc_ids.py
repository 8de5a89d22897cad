"""JSON-RPC request ids the MCP endpoint accepts: a string or an integer, never anything else.

JSON-RPC 2.0 §4: an id "MUST contain a String, Number, or NULL value if included"; MCP narrows
it (Basic protocol, Requests): "Requests MUST include a string or integer ID. Unlike base
JSON-RPC, the ID MUST NOT be null." A message with any other id is answered -32600 Invalid
Request with `id: null` (JSON-RPC 2.0 §5: when the id cannot be determined it "MUST be Null"),
rather than being passed on and silently dropped as a notification.
"""

from __future__ import annotations

from typing import Any


def _valid_id(item: dict[str, Any]) -> bool:
    value = item["id"]
    if value is None:
        # A null id is only meaningful in an error response that could not read the request's.
        return "method" not in item and "error" in item
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def has_malformed_id(message: object) -> bool:
    """Whether the message (or any message of a batch) carries an id MCP does not allow."""
    items = message if isinstance(message, list) else [message]
    return any(isinstance(item, dict) and "id" in item and not _valid_id(item) for item in items)
