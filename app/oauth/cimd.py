"""OAuth Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document).

A client whose `client_id` is an https URL publishes its own registration there; the authorization
server fetches (app/oauth/cimd_fetch.py) and validates it (here), as MCP authorization 2025-11-25
"Client ID Metadata Documents" describes.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from app.kit.urls import FORBIDDEN_REDIRECT_SCHEMES

MAX_CLIENT_ID_LENGTH = 2048

_DEFAULT_GRANT_TYPES = ("authorization_code", "refresh_token")
_DEFAULT_RESPONSE_TYPES = ("code",)

# Methods built on a shared symmetric secret (RFC 7591 / OIDC registry names).
_SYMMETRIC_AUTH_METHODS = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
)
# JWK members that only a private (or symmetric) key carries (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})

_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?\.?")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
_MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*\"?(\d+)\"?\s*(?:,|$)", re.IGNORECASE)


class CimdError(Exception):
    """A client ID metadata document could not be used.

    `str(exc)` is plain ASCII words without quotes or backslashes, safe for an error page and for an
    RFC 6749 `error_description`; it never echoes the attacker-controlled URL or document.
    """


@dataclass(frozen=True)
class ClientMetadataDocument:
    client_id: str
    client_name: str
    redirect_uris: tuple[str, ...]
    client_uri: str | None
    logo_uri: str | None
    token_endpoint_auth_method: str
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    scope: str | None
    # private_key_jwt only: where its public keys are (checked when an assertion is verified).
    jwks: dict[str, Any] | None = None
    jwks_uri: str | None = None

    @property
    def host(self) -> str:
        """The domain that vouches for the client: the hostname of its client_id URL."""
        return urlsplit(self.client_id).hostname or ""


# --- client_id URLs ------------------------------------------------------------------------------


def is_cimd_client_id(client_id: str) -> bool:
    """Whether `client_id` is a URL this server will fetch as a client ID metadata document."""
    if not 0 < len(client_id) <= MAX_CLIENT_ID_LENGTH:
        return False
    # Printable ASCII only: anything else would be re-encoded on the way out, and the document's
    # client_id is compared with this exact string.
    if not client_id.isascii() or any(c <= " " or c in '\\"<>^`{|}\x7f' for c in client_id):
        return False
    # "Client identifier URLs MUST have an "https" scheme" (§3).
    if not client_id.startswith("https://"):
        return False
    # "... MUST NOT contain a fragment component" (§3).
    if "#" in client_id:
        return False
    try:
        parts = urlsplit(client_id)
        port = parts.port
    except ValueError:
        return False
    # "... MUST NOT contain a username or password" (§3).
    if "@" in parts.netloc or not parts.hostname or port == 0:
        return False
    if not _valid_host(parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc):
        return False
    # "... MUST contain a path component" (§3); a root path is refused as well, since the draft
    # calls it NOT RECOMMENDED and it would make a whole site's root the client.
    if not parts.path or parts.path == "/":
        return False
    # "... MUST NOT contain single-dot or double-dot path segments" (§3), encoded ones included.
    return not any(unquote(s) in (".", "..") for s in parts.path.split("/"))


def _valid_host(host: str) -> bool:
    if host.startswith("["):
        if not host.endswith("]"):
            return False
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return False
        return True
    return len(host) <= 253 and _HOSTNAME.fullmatch(host) is not None


# --- caching (draft §4.4) ------------------------------------------------------------------------


def cache_lifetime(cache_control: str | None, *, min_ttl: int, max_ttl: int) -> int:
    """Seconds to keep a document, from its Cache-Control header; 0 means do not cache.

    Draft §4.4: "SHOULD respect HTTP cache headers [RFC9111] ..., but MAY define its own upper
    and/or lower bounds on an acceptable cache lifetime".
    """
    value = (cache_control or "").lower()
    directives = {d.split("=", 1)[0].strip() for d in value.split(",")}
    # no-cache means "revalidate before every use"; we do not revalidate, so we do not keep it.
    if "no-store" in directives or "no-cache" in directives:
        return 0
    match = _MAX_AGE.search(value)
    ttl = int(match.group(1)) if match else min_ttl
    return max(min_ttl, min(ttl, max_ttl))


# --- the document --------------------------------------------------------------------------------


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CimdError("the client metadata document repeats a property")
        result[key] = value
    return result


def _reject_constant(_name: str) -> None:
    raise CimdError("the client metadata document is not valid JSON")


def _load(body: bytes) -> dict[str, Any]:
    # MCP 2025-11-25: authorization servers "MUST validate the document structure is valid JSON
    # and contains required fields".
    try:
        data = json.loads(
            body.decode("utf-8"),
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CimdError("the client metadata document is not valid JSON") from None
    if not isinstance(data, dict):
        raise CimdError("the client metadata document is not a JSON object")
    return data


def _auth_method(data: dict[str, Any]) -> str:
    """The document's token_endpoint_auth_method: only `none`, with no secrets or private keys."""
    # Draft §4.1: "the client_secret and client_secret_expires_at properties MUST NOT be used".
    if "client_secret" in data or "client_secret_expires_at" in data:
        raise CimdError("a client metadata document must not contain a client secret")
    method = data.get("token_endpoint_auth_method", "none")
    if not isinstance(method, str):
        raise CimdError("token_endpoint_auth_method must be a string")
    # Draft §4.1: token_endpoint_auth_method "MUST NOT include client_secret_post,
    # client_secret_basic, client_secret_jwt, or any other method based around a shared
    # symmetric secret". Absent, RFC 7591's client_secret_basic default cannot apply (there is no
    # secret), so an absent method means a public client.
    if method in _SYMMETRIC_AUTH_METHODS:
        raise CimdError("a client metadata document cannot use a shared-secret auth method")
    if method not in ("none", "private_key_jwt"):
        raise CimdError("token_endpoint_auth_method must be none or private_key_jwt")
    # Draft (-latest) §4.1: "private key material MUST NOT be included".
    if _has_private_key(data.get("jwks")):
        raise CimdError("a client metadata document must not contain private keys")
    if method == "private_key_jwt" and (data.get("jwks") is None) == (data.get("jwks_uri") is None):
        # RFC 7591 §2: jwks and jwks_uri "MUST NOT both be present"; one is needed to verify.
        raise CimdError("a private_key_jwt client needs exactly one of jwks and jwks_uri")
    return method


def _redirect_uris(data: dict[str, Any]) -> tuple[str, ...]:
    # Draft §4.5: the document's redirect_uris are the registered redirect URIs that requests
    # are matched against exactly.
    redirect_uris = data.get("redirect_uris")
    if not isinstance(redirect_uris, list) or not redirect_uris:
        raise CimdError("the client metadata document has no redirect_uris")
    for uri in redirect_uris:
        if not isinstance(uri, str) or not _plausible_redirect_uri(uri):
            raise CimdError("the client metadata document has an invalid redirect URI")
    return tuple(redirect_uris)


def _optional_string(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise CimdError(f"{name} must be a string")
    return value


def parse_client_metadata(body: bytes, client_id: str) -> ClientMetadataDocument:
    """Validate the bytes fetched from `client_id` as its client ID metadata document."""
    data = _load(body)
    # Draft §4.1: "MUST contain a client_id property whose value MUST match the URL of the
    # document using simple string comparison"; MCP: "MUST validate that the fetched document's
    # client_id matches the URL exactly".
    if data.get("client_id") != client_id:
        raise CimdError("the client_id in the client metadata document does not match its URL")
    method = _auth_method(data)
    redirect_uris = _redirect_uris(data)
    client_name = (_optional_string(data, "client_name") or "").strip()
    scope = _optional_string(data, "scope")
    return ClientMetadataDocument(
        client_id=client_id,
        client_name=client_name or urlsplit(client_id).hostname or "",
        redirect_uris=redirect_uris,
        client_uri=_display_url(data.get("client_uri")),
        logo_uri=_display_url(data.get("logo_uri")),
        token_endpoint_auth_method=method,
        grant_types=_string_list(data, "grant_types", _DEFAULT_GRANT_TYPES),
        response_types=_string_list(data, "response_types", _DEFAULT_RESPONSE_TYPES),
        scope=scope,
        **_key_fields(data, method),
    )


def _key_fields(data: dict[str, Any], method: str) -> dict[str, Any]:
    if method != "private_key_jwt":
        return {}
    jwks, jwks_uri = data.get("jwks"), data.get("jwks_uri")
    if jwks is not None and not isinstance(jwks, dict):
        raise CimdError("jwks must be a JSON Web Key Set")
    if jwks_uri is not None and (
        not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https"
    ):
        raise CimdError("jwks_uri must be an https URL")
    return {"jwks": jwks, "jwks_uri": jwks_uri}


def _string_list(data: dict[str, Any], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = data.get(name)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise CimdError(f"{name} must be a list of strings")
    return tuple(value)


def _plausible_redirect_uri(uri: str) -> bool:
    # Full policy (loopback ports, private-use schemes) is the caller's, as for /register; this
    # only refuses what is never a redirect URI: no scheme, a fragment (RFC 6749 §3.1.2), or a
    # script-bearing scheme (draft §6.5 warns of "a URI scheme such as javascript:").
    if len(uri) > MAX_CLIENT_ID_LENGTH or "#" in uri or not uri.isascii():
        return False
    scheme, sep, _ = uri.partition(":")
    return (
        bool(sep)
        and _SCHEME.fullmatch(scheme) is not None
        and (scheme.lower() not in FORBIDDEN_REDIRECT_SCHEMES)
    )


def _display_url(value: object) -> str | None:
    # Display-only links: anything but a well-formed https URL is dropped rather than refusing the
    # whole client over a cosmetic field.
    if not isinstance(value, str) or len(value) > MAX_CLIENT_ID_LENGTH:
        return None
    if not value.startswith("https://") or not value.isascii() or any(c <= " " for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    return value if parts.hostname and "@" not in parts.netloc else None


def _has_private_key(jwks: object) -> bool:
    if not isinstance(jwks, dict):
        return False
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return False
    return any(isinstance(k, dict) and not _PRIVATE_JWK_MEMBERS.isdisjoint(k) for k in keys)
