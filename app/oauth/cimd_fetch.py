"""Fetching client ID metadata documents, fenced in (see app/oauth/cimd.py for the format).

The fetch is attacker-directed, so it is fenced in: https only, redirects refused, a total deadline,
a byte cap enforced while streaming, and every address the host resolves to must be public. The
connection goes to the address that was checked (TLS SNI, certificate verification and the Host
header still use the hostname), so DNS cannot answer differently between the check and the connect.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

import httpcore

from app.kit.cache import BoundedCache
from app.kit.safe_fetch import address_permitted, parse_ip, pinned_pool
from app.oauth.cimd import (
    CimdError,
    ClientMetadataDocument,
    cache_lifetime,
    is_cimd_client_id,
    parse_client_metadata,
)

logger = logging.getLogger("gatehouse.oauth.cimd")

_USER_AGENT = b"Gatehouse-CIMD/1.0"


# --- the fetcher ---------------------------------------------------------------------------------


class CimdFetcher:
    """Fetches, validates and caches client ID metadata documents. One per process; call aclose."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_bytes: int = 5 * 1024,
        cache_size: int = 1024,
        min_ttl: int = 300,
        max_ttl: int = 86400,
        ca_bundle: str | None = None,
        allow_loopback: bool = False,
    ) -> None:
        if timeout <= 0 or max_bytes <= 0 or cache_size < 0 or not 0 <= min_ttl <= max_ttl:
            raise ValueError("invalid CimdFetcher limits")
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._allow_loopback = allow_loopback
        self._min_ttl = min_ttl
        self._max_ttl = max_ttl
        self._cache: BoundedCache[str, ClientMetadataDocument] = BoundedCache(
            max_entries=cache_size
        )
        self._inflight: dict[str, asyncio.Task[ClientMetadataDocument]] = {}
        self._pool = pinned_pool(
            max_connections=64,
            allow_loopback=allow_loopback,
            ca_bundle=ca_bundle,
            refuse=CimdError,
        )

    async def fetch(self, client_id: str) -> ClientMetadataDocument:
        """The validated document for `client_id`, from the cache or the network."""
        if not is_cimd_client_id(client_id):
            raise CimdError("the client_id is not a valid https client metadata URL")
        cached = self._cache.get(client_id)
        if cached is not None:
            return cached
        # Concurrent callers for one URL share one request. The task belongs to no caller, so a
        # caller that gives up does not cancel it for the others.
        task = self._inflight.get(client_id)
        if task is None:
            task = asyncio.create_task(self._fetch_and_store(client_id))
            self._inflight[client_id] = task
            task.add_done_callback(lambda t: self._forget(client_id, t))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current is not None and current.cancelling()):
                raise CimdError("the client metadata fetcher was shut down") from None
            raise

    async def aclose(self) -> None:
        tasks = list(self._inflight.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._cache.clear()
        await self._pool.aclose()

    def _forget(self, client_id: str, task: asyncio.Task[ClientMetadataDocument]) -> None:
        if self._inflight.get(client_id) is task:
            del self._inflight[client_id]
        if not task.cancelled():
            task.exception()  # retrieved here so an unawaited failure is not reported as lost

    def cached(self, client_id: str) -> ClientMetadataDocument | None:
        """The document if it is in the cache and fresh; never fetches."""
        return self._cache.get(client_id)

    async def _fetch_and_store(self, client_id: str) -> ClientMetadataDocument:
        try:
            async with asyncio.timeout(self._timeout):
                body, cache_control = await self._download(client_id)
        except TimeoutError:
            logger.info("client metadata fetch timed out: %r", client_id)
            raise CimdError("fetching the client metadata document timed out") from None
        except CimdError as exc:
            logger.info("client metadata fetch refused: %r: %s", client_id, exc)
            raise
        try:
            document = parse_client_metadata(body, client_id)
        except CimdError as exc:
            logger.info("client metadata document refused: %r: %s", client_id, exc)
            raise
        # Draft §4.4: "MUST NOT cache error responses ... MUST NOT cache documents which are
        # invalid or malformed." Failures are therefore never cached; coalescing above keeps a
        # burst of requests for one failing URL down to one fetch at a time.
        ttl = cache_lifetime(cache_control, min_ttl=self._min_ttl, max_ttl=self._max_ttl)
        if ttl > 0:
            self._cache.put(client_id, document, ttl=ttl)
        logger.info("client metadata fetched: %r (%d bytes, cached %ds)", client_id, len(body), ttl)
        return document

    async def download(self, url: str, *, max_bytes: int) -> bytes:
        """GET an https URL other than a metadata document (a client's jwks_uri), through the same
        fence; raises CimdError. Not cached here: the caller knows the lifetime it wants."""
        if urlsplit(url).scheme != "https":
            raise CimdError("only https URLs are fetched")
        try:
            async with asyncio.timeout(self._timeout):
                body, _ = await self._download(url, max_bytes=max_bytes)
        except TimeoutError:
            raise CimdError("the fetch timed out") from None
        return body

    async def _download(
        self, client_id: str, *, max_bytes: int | None = None
    ) -> tuple[bytes, str | None]:
        parts = urlsplit(client_id)
        host = parts.hostname or ""
        literal = parse_ip(host)
        # A literal address is judged before any connection is attempted.
        if literal is not None and not address_permitted(
            literal, allow_loopback=self._allow_loopback
        ):
            raise CimdError("the client_id host resolves to an address that is not public")
        target = parts.path + (f"?{parts.query}" if "?" in client_id else "")
        url = httpcore.URL(
            scheme=b"https", host=host.encode("ascii"), port=parts.port, target=target.encode()
        )
        headers = [
            (b"Host", parts.netloc.encode("ascii")),
            (b"Accept", b"application/json"),
            (b"Accept-Encoding", b"identity"),
            (b"User-Agent", _USER_AGENT),
        ]
        timeouts = dict.fromkeys(("connect", "read", "write", "pool"), self._timeout)
        try:
            async with self._pool.stream(
                "GET", url, headers=headers, extensions={"timeout": timeouts}
            ) as response:
                return await self._read(response, max_bytes or self._max_bytes)
        except httpcore.TimeoutException:
            raise CimdError("fetching the client metadata document timed out") from None
        except httpcore.ConnectError as exc:
            if _caused_by_tls_failure(exc):
                raise CimdError("the client_id host did not present a trusted certificate") from exc
            raise CimdError("the client_id host could not be reached") from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise CimdError("the client_id host sent a broken response") from exc

    async def _read(self, response: httpcore.Response, max_bytes: int) -> tuple[bytes, str | None]:
        # Draft §4 (-latest): "MUST NOT automatically follow HTTP redirects"; "MUST be served with
        # a 200 OK HTTP status code ... MUST treat all other HTTP status codes as an error".
        if 300 <= response.status < 400:
            raise CimdError("the client_id URL redirected, and redirects are not followed")
        if response.status != 200:
            raise CimdError(f"the client_id URL answered with HTTP status {response.status}")
        headers = _header_map(response.headers)
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_bytes):
            raise CimdError("the client metadata document is too large")
        # Draft §6.6: "SHOULD limit the amount of data they read ..., for example by stopping
        # after a maximum number of bytes and treating the response as an error".
        body = bytearray()
        async for chunk in response.aiter_stream():
            body += chunk
            if len(body) > max_bytes:
                raise CimdError("the client metadata document is too large")
        return bytes(body), headers.get("cache-control")


def _caused_by_tls_failure(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ssl.SSLError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _header_map(headers: list[tuple[bytes, bytes]]) -> Mapping[str, str]:
    merged: dict[str, str] = {}
    for name, value in headers:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        merged[key] = f"{merged[key]}, {text}" if key in merged else text
    return merged
