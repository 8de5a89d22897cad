"""Which Host and Origin values /mcp answers: DNS-rebinding protection (MCP transport security)
for loopback and plain-http servers, any origin for an https deployment (bearer tokens only)."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

from app.config import Settings
from app.kit.hosts import is_loopback_host

MAX_SHOWN_ORIGIN = 200


def allowed_hosts(settings: Settings) -> frozenset[str]:
    public = urlsplit(settings.public_url)
    hosts = {public.netloc.lower(), *(h.lower() for h in settings.allowed_hosts)}
    if is_loopback_host(public.hostname or ""):
        port = f":{public.port}" if public.port else ""
        hosts |= {f"127.0.0.1{port}", f"localhost{port}", f"[::1]{port}"}
    return frozenset(hosts)


def allowed_origins(settings: Settings) -> frozenset[str] | None:
    """The browser origins /mcp answers; None: any origin.

    A deployed (https, not loopback) Gatehouse with no ALLOWED_ORIGINS takes any origin: /mcp
    takes bearer tokens only, never cookies, so a page on another origin gains nothing without a
    token, and the Host check below still refuses a rebound name. A loopback or plain-http server
    keeps DNS-rebinding protection — Streamable HTTP, "Security Warning": "Servers MUST validate
    the Origin header on all incoming connections to prevent DNS rebinding attacks. If the Origin
    header is present and invalid, servers MUST respond with HTTP 403 Forbidden" — and accepts
    only its own and loopback origins, plus ALLOWED_ORIGINS. Set, ALLOWED_ORIGINS narrows a
    deployed server to those (and its own origin).
    """
    public = urlsplit(settings.public_url)
    loopback = is_loopback_host(public.hostname or "")
    if public.scheme == "https" and not loopback and not settings.allowed_origins:
        return None
    origins = {f"{public.scheme}://{public.netloc}".lower(), *settings.allowed_origins}
    if loopback:
        port = f":{public.port}" if public.port else ""
        origins |= {f"http://127.0.0.1{port}", f"http://localhost{port}", f"http://[::1]{port}"}
    return frozenset(o.rstrip("/").lower() for o in origins)


def check_host_and_origin(
    headers: Headers, *, hosts: frozenset[str], origins: frozenset[str] | None
) -> None:
    """DNS-rebinding protection: the Origin (when the policy names origins) and the Host."""
    origin = headers.get("origin")
    if origins is not None and origin is not None and origin.rstrip("/").lower() not in origins:
        shown = origin if len(origin) <= MAX_SHOWN_ORIGIN and origin.isprintable() else "(invalid)"
        raise McpOriginRefused(
            403,
            f"the origin {shown} may not use this MCP endpoint; "
            "the server's operator can add it to ALLOWED_ORIGINS",
        )
    host = (headers.get("host") or "").lower()
    if host not in hosts:
        raise McpOriginRefused(
            421, "this host name is not served here; the operator can add it to ALLOWED_HOSTS"
        )


class McpOriginRefused(Exception):
    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
