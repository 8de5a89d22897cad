"""Redirect URI policy: exact match, loopback any port (RFC 8252 §7.3), no dangerous schemes."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit, urlunsplit

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
# RFC 1123 §2.1 host name labels (after IDNA, RFC 5891, for names written in Unicode).
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _host(netloc: str) -> str:
    host = netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.split(":", 1)[0].lower()


def ascii_host(parts: SplitResult) -> str | None:
    """The URI's host as a valid DNS name (IDNA-encoded) or IP literal, or None if it is not one.

    RFC 3986 §3.2.2 allows a reg-name of sub-delims (`;`, `,`, `*`, `'`, ...), which no DNS name
    holds and which would break out of any header the host is copied into (a CSP).
    """
    host = parts.hostname
    if not host:
        return None
    if parts.netloc.rsplit("@", 1)[-1].startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(host)}]"
        except ValueError:
            return None
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        pass
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    labels = name.removesuffix(".").split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        return None
    return name


def _authority_problem(uri: str, parts: SplitResult) -> str | None:
    if not parts.netloc:
        return None
    if ascii_host(parts) is None:
        return f"{uri!r} does not name a valid host (a DNS name or an IP address)"
    if not _port_ok(uri):
        return f"{uri!r} has a port that is not a number from 0 to 65535"
    return None


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
    return _authority_problem(uri, parts)


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
    """The CSP form-action source that lets a consent form's redirect reach this URI.

    Built from the parsed, re-serialised origin only (CSP3 §2.3.1 host-source grammar), never
    from the text as given: a redirect URI whose host could hold `;` would inject directives.
    "" when the URI has no origin that can be named safely (registration refuses those).
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    if not _SCHEME.match(scheme):
        return ""
    if scheme in ("http", "https"):
        host = ascii_host(parts)
        if host is None or not _port_ok(uri):
            return ""
        return f"{scheme}://{host}" + (f":{parts.port}" if parts.port is not None else "")
    return f"{scheme}:"
