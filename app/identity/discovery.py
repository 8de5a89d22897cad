"""An OpenID provider's metadata and keys, fetched from the deployer's configured issuer, cached.

The issuer comes from the deployer's own settings, so it is trusted like any other setting: a
provider on a private network or a loopback port must work, and its URLs do not go through the
SSRF fence (that is for addresses that come from outside, such as client metadata).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.jwk import KeySet

from app.identity.settings import ProviderConfig

logger = logging.getLogger("gatehouse.identity")

# Every outbound call is bounded: a slow provider gets a page in plain words, not a hung request.
TIMEOUT = httpx.Timeout(5.0, connect=3.0)
METADATA_MAX_AGE = 3600.0
KEYS_MAX_AGE = 3600.0
# An unknown `kid` or a provider that is down is asked again at most this often.
REFRESH_MIN_INTERVAL = 10.0
MAX_DOCUMENT_BYTES = 256 * 1024
TENANT_PLACEHOLDER = "{tenantid}"


class ProviderUnavailable(Exception):
    """The provider did not answer in time, or answered something that is not usable."""


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str  # as the metadata says it, perhaps with Entra's {tenantid} placeholder
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    iss_parameter_supported: bool
    id_token_algs: tuple[str, ...]

    @property
    def is_tenant_template(self) -> bool:
        return TENANT_PLACEHOLDER in self.issuer


def new_http_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False)


async def get_json(
    http: httpx.AsyncClient, url: str, *, headers: Mapping[str, str] | None = None
) -> Any:
    """GET a JSON document of bounded size; any failure is ProviderUnavailable."""
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"{type(exc).__name__} from {url}") from exc
    return checked_json(response, url)


def checked_json(response: httpx.Response, url: str) -> Any:
    if response.status_code != 200:
        raise ProviderUnavailable(f"HTTP {response.status_code} from {url}")
    if len(response.content) > MAX_DOCUMENT_BYTES:
        raise ProviderUnavailable(f"the answer from {url} is too large")
    try:
        return response.json()
    except ValueError as exc:
        raise ProviderUnavailable(f"the answer from {url} is not JSON") from exc


def discovery_url(issuer: str) -> str:
    # OIDC Discovery §4: remove any terminating "/" from the issuer, then append the path.
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def issuer_matches(metadata_issuer: str, configured: str) -> bool:
    """OIDC Discovery §4.3: the issuer in the metadata MUST be identical to the one used to
    fetch it. Entra's multi-tenant metadata names `{tenantid}` in place of the tenant."""
    if TENANT_PLACEHOLDER not in metadata_issuer:
        return metadata_issuer == configured
    pattern = re.escape(metadata_issuer).replace(re.escape(TENANT_PLACEHOLDER), "[^/]+")
    return re.fullmatch(pattern, configured) is not None


def parse_metadata(document: object, configured_issuer: str) -> ProviderMetadata:
    if not isinstance(document, dict):
        raise ProviderUnavailable("the provider's metadata is not a JSON object")
    issuer = document.get("issuer")
    if not isinstance(issuer, str) or not issuer_matches(issuer, configured_issuer):
        raise ProviderUnavailable(
            f"the provider's metadata names the issuer {issuer!r}, not {configured_issuer!r}"
        )
    urls = {}
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(key)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise ProviderUnavailable(f"the provider's metadata has no usable {key}")
        urls[key] = value
    userinfo = document.get("userinfo_endpoint")
    algs = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    return ProviderMetadata(
        issuer=issuer,
        userinfo_endpoint=userinfo if isinstance(userinfo, str) else None,
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
        id_token_algs=tuple(str(a) for a in algs if isinstance(a, str)),
        **urls,
    )


class OidcDiscovery:
    """One provider's metadata and JWKS: cached, re-read when old or on an unknown `kid`, and
    never asked more than once per REFRESH_MIN_INTERVAL when it fails or the `kid` stays
    unknown, so nobody can make us hammer the provider."""

    def __init__(self, config: ProviderConfig, http: httpx.AsyncClient) -> None:
        self.config = config
        self._http = http
        self._metadata: ProviderMetadata | None = None
        self._metadata_at = -math.inf
        self._metadata_tried = -math.inf
        self._keys: KeySet | None = None
        self._keys_at = -math.inf
        self._keys_tried = -math.inf
        self._lock = asyncio.Lock()
        self.last_error: str | None = None

    @property
    def available(self) -> bool:
        """Whether the last attempt to read the metadata worked (False before any attempt)."""
        return self._metadata is not None and self.last_error is None

    async def metadata(self) -> ProviderMetadata:
        now = time.monotonic()
        if self._metadata is not None and now - self._metadata_at < METADATA_MAX_AGE:
            return self._metadata
        async with self._lock:
            if (
                self._metadata is not None
                and time.monotonic() - self._metadata_at < METADATA_MAX_AGE
            ):
                return self._metadata
            if time.monotonic() - self._metadata_tried < REFRESH_MIN_INTERVAL:
                if self._metadata is not None:
                    return self._metadata
                raise ProviderUnavailable(self.last_error or "the provider is unavailable")
            self._metadata_tried = time.monotonic()
            url = discovery_url(self.config.issuer)
            try:
                self._metadata = parse_metadata(await get_json(self._http, url), self.config.issuer)
            except ProviderUnavailable as exc:
                self.last_error = str(exc)
                if self._metadata is not None:  # keep serving what we had
                    return self._metadata
                raise
            self._metadata_at = time.monotonic()
            self.last_error = None
            return self._metadata

    async def keys(self, kid: str | None) -> KeySet:
        """The provider's signing keys, re-read (rate-limited) when `kid` is not among them."""
        keys = self._keys
        fresh = time.monotonic() - self._keys_at < KEYS_MAX_AGE
        if keys is not None and fresh and (kid is None or _has_kid(keys, kid)):
            return keys
        async with self._lock:
            if (
                self._keys is not None
                and time.monotonic() - self._keys_tried < REFRESH_MIN_INTERVAL
            ):
                return self._keys
            self._keys_tried = time.monotonic()
            try:
                self._keys = await self._fetch_keys()
            except ProviderUnavailable as exc:
                self.last_error = str(exc)
                if self._keys is None:
                    raise
                return self._keys
            self._keys_at = time.monotonic()
            self.last_error = None
            return self._keys

    async def _fetch_keys(self) -> KeySet:
        metadata = await self._metadata_unlocked()
        document = await get_json(self._http, metadata.jwks_uri)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ProviderUnavailable("the provider's JWKS has no keys")
        # Only public signing keys: a symmetric ("oct") key in a JWKS would let anyone who can
        # read it sign tokens (HMAC with a public key).
        usable = [
            key
            for key in document["keys"]
            if isinstance(key, dict)
            and key.get("kty") in ("RSA", "EC", "OKP")
            and key.get("use", "sig") == "sig"
            and "d" not in key
        ]
        try:
            return KeySet.import_key_set({"keys": usable})
        except Exception as exc:  # noqa: BLE001 - joserfc raises several kinds for bad keys
            reason = f"the provider's JWKS is not usable ({type(exc).__name__})"
            raise ProviderUnavailable(reason) from exc

    async def _metadata_unlocked(self) -> ProviderMetadata:
        if self._metadata is not None:
            return self._metadata
        url = discovery_url(self.config.issuer)
        self._metadata = parse_metadata(await get_json(self._http, url), self.config.issuer)
        self._metadata_at = time.monotonic()
        return self._metadata


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)
