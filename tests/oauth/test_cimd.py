"""Client ID Metadata Documents: fetching, validation, address checks and caching.

Documents are served over real TLS from 127.0.0.1 with a throwaway CA; the fetcher trusts that CA
and may reach loopback only because the test says so. No traffic goes to any other address.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.kit.safe_fetch import is_public_address
from app.oauth.cimd import CimdError, cache_lifetime, is_cimd_client_id, parse_client_metadata
from app.oauth.cimd_fetch import CimdFetcher
from tests.oauth.tls_server import Certificates, Route, TlsServer, make_certificates

# RFC 6749 §5.2: error_description is %x20-21 / %x23-5B / %x5D-7E.
ERROR_DESCRIPTION = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]+")


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("cimd-tls"))


@pytest.fixture(scope="session")
async def server(certs: Certificates) -> AsyncIterator[TlsServer]:
    tls_server = TlsServer(certs)
    await tls_server.start()
    yield tls_server
    await tls_server.stop()


@pytest.fixture
async def fetcher(certs: Certificates) -> AsyncIterator[CimdFetcher]:
    instance = CimdFetcher(ca_bundle=str(certs.ca_file), allow_loopback=True)
    yield instance
    await instance.aclose()


_counter = iter(range(1_000_000))


@pytest.fixture
def path() -> str:
    """A path no other test uses, so cache entries and hit counts never leak between tests."""
    return f"/clients/{next(_counter)}/metadata.json"


def document(url: str, **overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "client_id": url,
        "client_name": "Example MCP Client",
        "client_uri": "https://app.example.com",
        "logo_uri": "https://app.example.com/logo.png",
        "redirect_uris": ["http://127.0.0.1:3000/callback", "http://localhost:3000/callback"],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    doc.update(overrides)
    return {k: v for k, v in doc.items() if v is not None}


def serve(server: TlsServer, path: str, body: dict[str, Any] | bytes, **route: Any) -> str:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    server.routes[path] = Route(body=raw, headers=route.pop("headers", {}), **route)
    return server.url(path)


async def refused(fetcher: CimdFetcher, url: str) -> str:
    with pytest.raises(CimdError) as info:
        await fetcher.fetch(url)
    message = str(info.value)
    assert ERROR_DESCRIPTION.fullmatch(message), message
    return message


# --- fetching a good document --------------------------------------------------------------------


async def test_good_document_is_parsed(fetcher: CimdFetcher, server: TlsServer, path: str) -> None:
    url = server.url(path)
    serve(server, path, document(url, scope="mcp"))

    doc = await fetcher.fetch(url)

    assert doc.client_id == url
    assert doc.client_name == "Example MCP Client"
    assert doc.redirect_uris == (
        "http://127.0.0.1:3000/callback",
        "http://localhost:3000/callback",
    )
    assert doc.client_uri == "https://app.example.com"
    assert doc.logo_uri == "https://app.example.com/logo.png"
    assert doc.token_endpoint_auth_method == "none"
    assert doc.grant_types == ("authorization_code",)
    assert doc.response_types == ("code",)
    assert doc.scope == "mcp"
    assert doc.host == "localhost"


async def test_request_keeps_hostname_for_sni_and_host_header(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = serve(server, path, document(server.url(path)))

    await fetcher.fetch(url)

    [seen] = [r for r in server.requests if r.path == path]
    assert seen.sni == "localhost"
    assert seen.headers["host"] == f"localhost:{server.port}"
    assert seen.headers["accept"] == "application/json"


async def test_defaults_fill_optional_fields(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    bare = {"client_id": url, "redirect_uris": ["https://app.example.com/cb"]}
    serve(server, path, bare)

    doc = await fetcher.fetch(url)

    assert doc.client_name == "localhost"
    assert doc.client_uri is None
    assert doc.logo_uri is None
    assert doc.token_endpoint_auth_method == "none"
    assert doc.grant_types == ("authorization_code", "refresh_token")
    assert doc.response_types == ("code",)
    assert doc.scope is None


async def test_literal_loopback_ip_url_is_fetched_when_allowed(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path, host="127.0.0.1")
    serve(server, path, document(url))

    doc = await fetcher.fetch(url)

    assert doc.host == "127.0.0.1"


# --- refusals from the document ------------------------------------------------------------------


async def test_client_id_mismatch_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url + "x"))

    assert "does not match" in await refused(fetcher, url)


async def test_client_id_is_compared_as_an_exact_string(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url.replace("localhost", "LOCALHOST")))

    assert "does not match" in await refused(fetcher, url)


async def test_non_json_body_is_refused(fetcher: CimdFetcher, server: TlsServer, path: str) -> None:
    url = serve(server, path, b"<html>hello</html>")

    assert "not valid JSON" in await refused(fetcher, url)


async def test_json_that_is_not_an_object_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = serve(server, path, b'["https://example.com"]')

    assert "not a JSON object" in await refused(fetcher, url)


async def test_missing_redirect_uris_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url, redirect_uris=None))

    assert "no redirect_uris" in await refused(fetcher, url)


@pytest.mark.parametrize("redirect_uris", [[], "https://a.example/cb", [42]])
async def test_malformed_redirect_uris_are_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str, redirect_uris: object
) -> None:
    url = server.url(path)
    serve(server, path, document(url, redirect_uris=redirect_uris))

    await refused(fetcher, url)


@pytest.mark.parametrize(
    "method", ["client_secret_basic", "client_secret_post", "client_secret_jwt"]
)
async def test_shared_secret_auth_method_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str, method: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url, token_endpoint_auth_method=method))

    assert "shared-secret" in await refused(fetcher, url)


async def test_private_key_jwt_without_keys_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url, token_endpoint_auth_method="private_key_jwt"))

    assert "exactly one of jwks and jwks_uri" in await refused(fetcher, url)


async def test_other_asymmetric_auth_methods_are_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url, token_endpoint_auth_method="tls_client_auth"))

    assert "must be none or private_key_jwt" in await refused(fetcher, url)


@pytest.mark.parametrize("field", ["client_secret", "client_secret_expires_at"])
async def test_client_secret_properties_are_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str, field: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url, **{field: "s3cret"}))

    assert "client secret" in await refused(fetcher, url)


def test_private_key_material_is_refused() -> None:
    url = "https://app.example.com/client.json"
    jwks = {"keys": [{"kty": "EC", "crv": "P-256", "x": "x", "y": "y", "d": "private"}]}
    body = json.dumps(document(url, jwks=jwks)).encode()

    with pytest.raises(CimdError, match="private keys"):
        parse_client_metadata(body, url)


def test_duplicate_properties_are_refused() -> None:
    url = "https://app.example.com/client.json"
    body = (
        f'{{"client_id": "{url}", "redirect_uris": ["https://a.example/cb"],'
        f' "redirect_uris": ["https://evil.example/cb"]}}'
    ).encode()

    with pytest.raises(CimdError, match="repeats a property"):
        parse_client_metadata(body, url)


@pytest.mark.parametrize(
    "redirect_uri", ["javascript:alert(1)", "data:text/html,x", "https://a.example/cb#frag", "cb"]
)
def test_unusable_redirect_uris_are_refused(redirect_uri: str) -> None:
    url = "https://app.example.com/client.json"
    body = json.dumps(document(url, redirect_uris=[redirect_uri])).encode()

    with pytest.raises(CimdError, match="invalid redirect URI"):
        parse_client_metadata(body, url)


def test_non_https_display_urls_are_dropped() -> None:
    url = "https://app.example.com/client.json"
    body = json.dumps(
        document(url, client_uri="javascript:alert(1)", logo_uri="http://a.example/l.png")
    ).encode()

    doc = parse_client_metadata(body, url)

    assert doc.client_uri is None
    assert doc.logo_uri is None


# --- refusals from the transport -----------------------------------------------------------------


async def test_redirect_is_refused_and_not_followed(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    target = path + "-target"
    serve(server, target, document(server.url(target)))
    url = serve(server, path, b"", status=302, headers={"Location": server.url(target)})

    assert "redirects are not followed" in await refused(fetcher, url)
    assert server.hits[target] == 0


async def test_non_200_status_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url), status=500)

    assert "HTTP status 500" in await refused(fetcher, url)


async def test_oversized_body_with_content_length_is_refused(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url, client_name="x" * 6000))

    assert "too large" in await refused(fetcher, url)


async def test_oversized_streamed_body_stops_reading(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    # No Content-Length and a body that never ends: only the streaming cap can stop this.
    url = serve(server, path, b'{"client_id": ', endless=True)

    assert "too large" in await refused(fetcher, url)


async def test_slow_server_hits_the_total_timeout(
    certs: Certificates, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url), delay=2.0)
    quick = CimdFetcher(timeout=0.5, ca_bundle=str(certs.ca_file), allow_loopback=True)
    try:
        assert "timed out" in await refused(quick, url)
    finally:
        await quick.aclose()


async def test_certificate_from_untrusted_ca_is_refused(server: TlsServer, path: str) -> None:
    url = server.url(path)
    serve(server, path, document(url))
    untrusting = CimdFetcher(allow_loopback=True)
    try:
        assert "trusted certificate" in await refused(untrusting, url)
    finally:
        await untrusting.aclose()


async def test_http_url_is_refused(fetcher: CimdFetcher, server: TlsServer, path: str) -> None:
    url = f"http://localhost:{server.port}{path}"

    assert not is_cimd_client_id(url)
    assert "not a valid https client metadata URL" in await refused(fetcher, url)
    assert server.hits[path] == 0


# --- addresses -----------------------------------------------------------------------------------


async def test_loopback_is_refused_unless_allowed(
    certs: Certificates, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url))
    production = CimdFetcher(ca_bundle=str(certs.ca_file))
    try:
        assert "not public" in await refused(production, url)
        assert "not public" in await refused(production, server.url(path, host="127.0.0.1"))
    finally:
        await production.aclose()
    assert server.hits[path] == 0


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1/x",
        "https://192.168.1.1/client.json",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/x",
        "https://0.0.0.0/x",
        "https://[::ffff:10.0.0.1]/x",
        "https://[fc00::1]/x",
        "https://[fe80::1]/x",
    ],
)
async def test_literal_special_address_is_refused_before_connecting(
    fetcher: CimdFetcher, url: str
) -> None:
    # The fetcher here allows loopback; every other special-use address is still refused, and
    # refused before a connection is attempted (a connection attempt would fail differently).
    assert "not public" in await refused(fetcher, url)


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2606:4700:4700::1111", True),
        ("64:ff9b::808:808", True),  # NAT64 of a public address
        ("10.0.0.1", False),
        ("172.16.5.4", False),
        ("192.168.0.1", False),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("100.127.255.255", False),
        ("0.0.0.0", False),  # noqa: S104 - an address under test, not a bind
        ("255.255.255.255", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("240.0.0.1", False),
        ("192.0.0.8", False),
        ("192.0.2.1", False),
        ("198.18.0.1", False),
        ("::", False),
        ("::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::ffff:8.8.8.8", True),
        ("::10.0.0.1", False),  # IPv4-compatible (deprecated)
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("fc00::1", False),
        ("fd12:3456::1", False),
        ("fe80::1", False),
        ("fe80::1%1", False),
        ("fec0::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("2001::1", False),  # Teredo
        ("2002:a00:1::1", False),  # 6to4
        ("100::1", False),  # discard-only
        ("not-an-address", False),
    ],
)
def test_address_classifier(address: str, public: bool) -> None:
    assert is_public_address(address) is public


# --- client_id URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "valid"),
    [
        ("https://app.example.com/client.json", True),
        ("https://app.example.com:8443/oauth/client", True),
        ("https://app.example.com/client?v=1", True),
        ("https://[2606:4700::1]/client", True),
        ("http://app.example.com/client.json", False),
        ("HTTPS://app.example.com/client.json", False),
        ("https://app.example.com", False),
        ("https://app.example.com/", False),
        ("https://app.example.com/client#frag", False),
        ("https://app.example.com/client#", False),
        ("https://user@app.example.com/client", False),
        ("https://user:pw@app.example.com/client", False),
        ("https://app.example.com/a/../client", False),
        ("https://app.example.com/./client", False),
        ("https://app.example.com/a/%2e%2e/client", False),
        ("https://app.example.com/a/..", False),
        ("https:///client", False),
        ("https://app.example.com:99999/client", False),
        ("https://app.example.com:/client", False),
        ("https://app example.com/client", False),
        ("https://app.example.com/cl ient", False),
        ("https://bücher.example/client", False),
        ("https://[::1/client", False),
        ("https://app.example.com/" + "a" * 2030, False),
        ("client-1234", False),
        ("", False),
    ],
)
def test_client_id_url_rules(client_id: str, valid: bool) -> None:
    assert is_cimd_client_id(client_id) is valid


# --- caching and coalescing ----------------------------------------------------------------------


async def test_cache_hit_does_not_refetch(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url))

    first = await fetcher.fetch(url)
    second = await fetcher.fetch(url)

    assert first == second
    assert server.hits[path] == 1


async def test_no_store_is_not_cached(fetcher: CimdFetcher, server: TlsServer, path: str) -> None:
    url = server.url(path)
    serve(server, path, document(url), headers={"Cache-Control": "no-store"})

    await fetcher.fetch(url)
    await fetcher.fetch(url)

    assert server.hits[path] == 2


async def test_failures_are_not_cached(fetcher: CimdFetcher, server: TlsServer, path: str) -> None:
    url = server.url(path)
    serve(server, path, document(url), status=500)
    await refused(fetcher, url)
    serve(server, path, document(url))

    assert (await fetcher.fetch(url)).client_id == url
    assert server.hits[path] == 2


async def test_max_age_below_the_floor_is_raised_to_min_ttl(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url), headers={"Cache-Control": "max-age=0"})

    await fetcher.fetch(url)
    await fetcher.fetch(url)

    assert server.hits[path] == 1


async def test_max_age_above_the_ceiling_is_cut_to_max_ttl(
    certs: Certificates, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url), headers={"Cache-Control": "public, max-age=86400"})
    short = CimdFetcher(min_ttl=0, max_ttl=1, ca_bundle=str(certs.ca_file), allow_loopback=True)
    try:
        await short.fetch(url)
        await short.fetch(url)
        assert server.hits[path] == 1
        # The entry's one-second lifetime has to pass in real time; nothing here measures speed.
        await asyncio.sleep(1.1)
        await short.fetch(url)
        assert server.hits[path] == 2
    finally:
        await short.aclose()


async def test_cache_is_bounded_lru(certs: Certificates, server: TlsServer, path: str) -> None:
    paths = [f"{path}-{i}" for i in range(3)]
    urls = [serve(server, p, document(server.url(p))) for p in paths]
    small = CimdFetcher(cache_size=2, ca_bundle=str(certs.ca_file), allow_loopback=True)
    try:
        await small.fetch(urls[0])
        await small.fetch(urls[1])
        await small.fetch(urls[0])  # most recently used now
        await small.fetch(urls[2])  # evicts urls[1]
        await small.fetch(urls[0])
        await small.fetch(urls[1])
        assert [server.hits[p] for p in paths] == [1, 2, 1]
    finally:
        await small.aclose()


async def test_concurrent_fetches_coalesce_into_one_request(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url), delay=0.3)

    results = await asyncio.gather(*(fetcher.fetch(url) for _ in range(20)))

    assert server.hits[path] == 1
    assert all(r == results[0] for r in results)


async def test_concurrent_failures_coalesce_and_all_callers_see_the_error(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url + "x"), delay=0.3)

    results = await asyncio.gather(*(fetcher.fetch(url) for _ in range(5)), return_exceptions=True)

    assert server.hits[path] == 1
    assert all(isinstance(r, CimdError) for r in results)


async def test_a_cancelled_caller_does_not_cancel_the_shared_fetch(
    fetcher: CimdFetcher, server: TlsServer, path: str
) -> None:
    url = server.url(path)
    serve(server, path, document(url), delay=0.3)

    impatient = asyncio.create_task(fetcher.fetch(url))
    patient = asyncio.create_task(fetcher.fetch(url))
    await asyncio.sleep(0.05)
    impatient.cancel()

    assert (await patient).client_id == url
    assert impatient.cancelled()
    assert server.hits[path] == 1


@pytest.mark.parametrize(
    ("header", "ttl"),
    [
        (None, 300),
        ("max-age=600", 600),
        ("public, max-age=600", 600),
        ('max-age="600"', 600),
        ("max-age=0", 300),
        ("max-age=999999", 86400),
        ("no-store", 0),
        ("no-cache", 0),
        ("max-age=600, no-store", 0),
        ("s-maxage=5", 300),
        ("max-age=abc", 300),
    ],
)
def test_cache_lifetime(header: str | None, ttl: int) -> None:
    assert cache_lifetime(header, min_ttl=300, max_ttl=86400) == ttl


def test_invalid_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="limits"):
        CimdFetcher(min_ttl=10, max_ttl=5)
