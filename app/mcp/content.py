"""What a tool (or prompt) can return besides text and a pydantic model (structured content).

A tool typed `-> list[Content]` returns these blocks as its `content`; a tool typed with a
pydantic model returns `structuredContent` (plus its JSON as text). Binary data is given as bytes
and base64-encoded here.
"""

from __future__ import annotations

import base64

from mcp_types import (
    AudioContent,
    BlobResourceContents,
    EmbeddedResource,
    ImageContent,
    ResourceLink,
    TextContent,
    TextResourceContents,
)

Content = TextContent | ImageContent | AudioContent | EmbeddedResource | ResourceLink


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def text(value: str) -> TextContent:
    return TextContent(type="text", text=value)


def image(data: bytes, mime_type: str = "image/png") -> ImageContent:
    return ImageContent(type="image", data=_b64(data), mime_type=mime_type)


def audio(data: bytes, mime_type: str = "audio/wav") -> AudioContent:
    return AudioContent(type="audio", data=_b64(data), mime_type=mime_type)


def embedded(uri: str, value: str | bytes, mime_type: str = "text/plain") -> EmbeddedResource:
    """A resource's contents inside the result (text, or bytes as a blob)."""
    resource: TextResourceContents | BlobResourceContents = (
        TextResourceContents(uri=uri, text=value, mime_type=mime_type)
        if isinstance(value, str)
        else BlobResourceContents(uri=uri, blob=_b64(value), mime_type=mime_type)
    )
    return EmbeddedResource(type="resource", resource=resource)


def link(
    uri: str, name: str, *, mime_type: str | None = None, description: str | None = None
) -> ResourceLink:
    """A pointer to a resource the client may read with resources/read."""
    return ResourceLink(
        type="resource_link", uri=uri, name=name, mime_type=mime_type, description=description
    )
