"""Client logos for the consent page: a client's https `logo_uri`, fetched through the same
SSRF fence as client metadata documents (public addresses only, pinned connection, no
redirects), capped in size, checked to be PNG, JPEG, GIF or WebP (never SVG: it can carry
script), cached, and served from our origin so the page's CSP stays `img-src 'self'`.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from app.kit.cache import BoundedCache
from app.kit.safe_fetch import pinned_pool

logger = logging.getLogger("gatehouse.oauth")

MAX_LOGO_BYTES = 100 * 1024
# RFC 7591 §2 logo_uri: "URL string that references a logo for the client." Only raster types
# whose first bytes say what they are; the Content-Type must agree with them.
SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@dataclass(frozen=True)
class Logo:
    body: bytes
    content_type: str


def sniff(body: bytes) -> str | None:
    for signature, kind in SIGNATURES:
        if body.startswith(signature):
            return kind
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    return None


def is_fetchable(logo_uri: object) -> bool:
    if not isinstance(logo_uri, str) or len(logo_uri) > 2048:
        return False
    parts = urlsplit(logo_uri)
    return parts.scheme == "https" and bool(parts.hostname) and not parts.username


class ClientLogos:
    """Fetches and caches logos (a failure is cached too, briefly). One per process."""

    def __init__(
        self,
        *,
        ca_bundle: str | None = None,
        allow_loopback: bool = False,
        timeout: float = 3.0,
        cache_size: int = 256,
        ttl: float = 3600.0,
        failure_ttl: float = 300.0,
    ) -> None:
        self._pool = pinned_pool(
            max_connections=16, allow_loopback=allow_loopback, ca_bundle=ca_bundle
        )
        self._timeout = timeout
        # A failure is stored as None, for failure_ttl: a broken logo is not asked for again soon.
        self._cache: BoundedCache[str, Logo | None] = BoundedCache(max_entries=cache_size)
        self._ttl = ttl
        self._failure_ttl = failure_ttl
        self._lock = asyncio.Lock()  # one fetch at a time: a burst cannot fan out

    async def get(self, logo_uri: str) -> Logo | None:
        if not is_fetchable(logo_uri):
            return None
        async with self._lock:
            cached = self._cache.lookup(logo_uri)
            if cached is not None:
                return cached.value
            logo = await self._fetch(logo_uri)
            lifetime = self._ttl if logo is not None else self._failure_ttl
            self._cache.put(logo_uri, logo, ttl=lifetime)
            return logo

    async def aclose(self) -> None:
        await self._pool.aclose()

    async def _fetch(self, logo_uri: str) -> Logo | None:
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self._timeout)
        headers = [(b"Accept", b"image/png, image/jpeg, image/gif, image/webp")]
        try:
            async with self._pool.stream(
                "GET", logo_uri, headers=headers, extensions={"timeout": timeouts}
            ) as response:
                if response.status != 200:  # redirects are not followed
                    return None
                declared = _content_type(response.headers)
                body = bytearray()
                async for chunk in response.aiter_stream():
                    body += chunk
                    if len(body) > MAX_LOGO_BYTES:
                        return None
        except Exception as exc:  # noqa: BLE001 - any failure means "no logo", never an error page
            logger.info("client logo not fetched: %s", type(exc).__name__)
            return None
        kind = sniff(bytes(body))
        if kind is None or declared != kind:
            return None
        return Logo(bytes(body), kind)


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""
