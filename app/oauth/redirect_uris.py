"""Redirect URI policy: exact match, loopback any port (RFC 8252 §7.3), no dangerous schemes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from app.kit.urls import FORBIDDEN_REDIRECT_SCHEMES as FORBIDDEN_SCHEMES

MAX_REDIRECT_URI_LENGTH = 2000
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "[::1]", "localhost"})
KNOWN_APP_SCHEMES = frozenset(
    {
        "cursor",
        "vscode",
        "vscode-insiders",
        "windsurf",
        "claude",
        "zed",
        "raycast",
        "warp",
        "jetbrains",
        "goose",
        "msty",
        "lmstudio",
    }
)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.\-]*$")


def _host(netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.split(":", 1)[0].lower()


def _form_problem(uri: str) -> str | None:
    """Why this is not a well-formed absolute URI without a fragment or user information."""
    if not isinstance(uri, str) or not uri:
        return "redirect URIs must be non-empty strings"
    if len(uri) > MAX_REDIRECT_URI_LENGTH:
        return f"redirect URIs must be at most {MAX_REDIRECT_URI_LENGTH} characters"
    if any(ord(ch) < 0x21 or ch in '\x7f<>"\\' for ch in uri):
        return "redirect URIs must not contain spaces, control characters, quotes or backslashes"
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not scheme or not _SCHEME.match(parts.scheme):
        return f"{uri!r} is not an absolute URI"
    if scheme in FORBIDDEN_SCHEMES:
        return f"the {scheme}: scheme is not allowed for redirect URIs"
    # RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment component."
    if parts.fragment or "#" in uri:
        return "redirect URIs must not contain a fragment"
    if parts.username or parts.password or "@" in parts.netloc:
        return "redirect URIs must not contain user information"
    return None


def _scheme_problem(uri: str) -> str | None:
    """Why this scheme (and, for http, host) may not receive authorization responses."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if scheme == "https":
        return None if parts.hostname else "https redirect URIs need a host"
    if scheme == "http":
        # RFC 8252 §8.3 / OAuth 2.1: plain http only for the loopback interface.
        if _host(parts.netloc) not in LOOPBACK_HOSTS:
            return "http redirect URIs are only allowed for loopback (127.0.0.1, [::1], localhost)"
        return None
    # A private-use scheme (RFC 8252 §7.1): reverse-DNS names (com.example.app:/cb) or the
    # well-known app schemes of MCP clients. Not arbitrary OS protocol handlers (search-ms:,
    # ms-msdt:, ...), which would let a self-registered client launch local programs.
    if "." in scheme or scheme in KNOWN_APP_SCHEMES:
        return None
    return (
        f"the {scheme}: scheme is not allowed: use https, loopback http, a reverse-DNS scheme "
        "such as com.example.app, or one of " + ", ".join(sorted(KNOWN_APP_SCHEMES))
    )


def redirect_uri_problem(uri: str) -> str | None:
    """Why this URI may not be registered, or None if it may."""
    return _form_problem(uri) or _scheme_problem(uri)


def _is_loopback_http(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.scheme == "http" and _host(parts.netloc) in LOOPBACK_HOSTS


def _without_port(uri: str) -> tuple[str, str, str, str]:
    parts = urlsplit(uri)
    return (parts.scheme, _host(parts.netloc), parts.path, parts.query)


def redirect_uri_matches(registered: str, presented: str) -> bool:
    """Exact string comparison, except that a loopback redirect may use any port.

    RFC 8252 §7.3: "The authorization server MUST allow any port to be specified at the time of
    the request for loopback IP redirect URIs, to accommodate clients that obtain an available
    ephemeral port from the operating system at the time of the request."
    """
    if registered == presented:
        return True
    if _is_loopback_http(registered) and _is_loopback_http(presented):
        port = urlsplit(presented).port if _port_ok(presented) else None
        return port is not None and _without_port(registered) == _without_port(presented)
    return False


def _port_ok(uri: str) -> bool:
    try:
        urlsplit(uri).port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return True


def find_registered(registered: list[str], presented: str) -> str | None:
    for candidate in registered:
        if redirect_uri_matches(candidate, presented):
            return candidate
    return None


def loopback_without_port(uri: str) -> str:
    """A loopback http URI with its port removed; any other URI unchanged."""
    if not _is_loopback_http(uri) or not _port_ok(uri) or urlsplit(uri).port is None:
        return uri
    parts = urlsplit(uri)
    host = _host(parts.netloc)
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def is_native_redirect(uri: str) -> bool:
    """A redirect to the user's own device (loopback or an app scheme), not to a website."""
    return _is_loopback_http(uri) or urlsplit(uri).scheme not in ("http", "https")


def csp_source(uri: str) -> str:
    """The CSP form-action source that lets a consent form's redirect reach this URI."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}"
    return f"{parts.scheme}:"
