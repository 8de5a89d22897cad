"""The client's logo on the consent page: fetched through the SSRF fence, capped, type-checked
(PNG, JPEG, GIF, WebP; never SVG), cached, and served from our origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import sign_up
from tests.oauth.flow import Authorization, register
from tests.oauth.tls_server import Certificates, Route, TlsServer, make_certificates

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
_counter = iter(range(1_000_000))


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("logo-tls"))


@pytest.fixture(scope="module")
async def images(certs: Certificates) -> AsyncIterator[TlsServer]:
    server = TlsServer(certs)
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def browser_client(
    backend: Backend, certs: Certificates, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        backend, tmp_path, cimd_ca_bundle=str(certs.ca_file), cimd_allow_loopback=True
    )
    async with running_app(settings) as app, client_for(app) as client:
        await sign_up(client)
        yield client


async def consent_logo(
    client: httpx.AsyncClient, images: TlsServer, route: Route
) -> httpx.Response:
    path = f"/logos/{next(_counter)}"
    images.routes[path] = route
    registered = await register(client, logo_uri=images.url(path))
    page = await client.get(Authorization(registered["client_id"]).url())
    assert page.status_code == 200
    src = f"/consent/logo?client_id={registered['client_id']}"
    assert f'<img class="client-logo" src="{src}"' in page.text
    return await client.get(src)


async def test_a_png_logo_is_served_from_our_origin(
    browser_client: httpx.AsyncClient, images: TlsServer
) -> None:
    route = Route(body=PNG, headers={"Content-Type": "image/png"})
    served = await consent_logo(browser_client, images, route)
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert served.content == PNG


@pytest.mark.parametrize(
    "route",
    [
        Route(body=SVG, headers={"Content-Type": "image/svg+xml"}),
        Route(body=SVG, headers={"Content-Type": "image/png"}),  # lies about its type
        Route(body=PNG, headers={"Content-Type": "text/html"}),
        Route(body=PNG + b"\x00" * (101 * 1024), headers={"Content-Type": "image/png"}),
        Route(status=302, headers={"Location": "https://localhost/x.png"}),
    ],
    ids=["svg", "svg-as-png", "wrong-type", "too-large", "redirect"],
)
async def test_a_logo_that_is_not_a_small_raster_image_is_not_served(
    browser_client: httpx.AsyncClient, images: TlsServer, route: Route
) -> None:
    assert (await consent_logo(browser_client, images, route)).status_code == 404


async def test_a_logo_is_fetched_once_then_cached(
    browser_client: httpx.AsyncClient, images: TlsServer
) -> None:
    route = Route(body=PNG, headers={"Content-Type": "image/png"})
    served = await consent_logo(browser_client, images, route)
    path = next(p for p, r in images.routes.items() if r is route)
    assert (await browser_client.get(served.request.url)).status_code == 200
    assert images.hits[path] == 1


async def test_the_logo_needs_a_signed_in_browser(
    browser_client: httpx.AsyncClient, images: TlsServer
) -> None:
    route = Route(body=PNG, headers={"Content-Type": "image/png"})
    path = f"/logos/{next(_counter)}"
    images.routes[path] = route
    registered = await register(browser_client, logo_uri=images.url(path))
    browser_client.cookies.clear()
    refused = await browser_client.get(f"/consent/logo?client_id={registered['client_id']}")
    assert refused.status_code == 303
    assert images.hits[path] == 0
