"""Every page fits a phone (360 px) and a laptop (1280 px) without horizontal scrolling, and the
consent page's Approve/Deny are on the first screen. Headless Chromium against a real server.

PAGES is the table: a name, how a browser reaches the page, which browser (anonymous, signed in,
or a fresh one for journeys that leave state behind) and the heading that proves it got there.
Each page is reached the real way: the recovery links are the ones the server mailed (written to
its log, as in development without SMTP_URL), the second-factor page comes after a password
sign-in of an account with TOTP on, and the identity link page after a sign-in at a stand-in
OpenID provider vouching for an existing account's address. Screenshots of each page at each
size go to the folder printed at the start (SCREENSHOT_DIR, or under the pytest temporary
directory) for a person to look at.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.auth.mfa.support import enrol_totp
from tests.conftest import Backend, LiveServer, start_server
from tests.helpers import PASSWORD, form_post, sign_up, unique_email
from tests.identity import stub_idp
from tests.identity.stub_idp import StubIdp
from tests.identity.support import new_code
from tests.oauth.flow import REDIRECT_URI, Authorization, register

pytestmark = pytest.mark.browser

VIEWPORTS = {"phone": (360, 740), "laptop": (1280, 800)}
LONG_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36" + " ExtraToken/1.0" * 20
)
PROVIDER = "stub"
PROVIDER_LABEL = "Stub ID"


@dataclass
class Journey:
    """What the pages need: a live server (with a sign-in provider), an account, a client
    approved once (so /account/apps has a row), a client never approved (so /authorize shows
    consent), an account with TOTP on, one half-way through setting it up, and the links the
    server mailed."""

    server: LiveServer
    stub: StubIdp
    email: str
    approved_client: str
    pending_client: str
    totp_email: str
    enrolling_email: str
    verify_link: str
    reset_link: str


Reach = Callable[[Journey, Any], Awaitable[None]]


@dataclass(frozen=True)
class Page:
    name: str
    reach: Reach
    heading: str  # the start of the page's h1: proof the browser reached the page meant
    browser: str = "signed-in"  # or "anonymous", or "fresh" (a context of its own)
    consent: bool = False  # the Approve/Deny buttons must be on the first screen


def path(value: str | Callable[[Journey], str]) -> Reach:
    async def reach(journey: Journey, page: Any) -> None:
        target = value(journey) if callable(value) else value
        await page.goto(journey.server.url + target)

    return reach


async def _second_factor(journey: Journey, page: Any) -> None:
    await _sign_in(page, journey, journey.totp_email, then="/second-factor")


async def _totp_setup(journey: Journey, page: Any) -> None:
    await _sign_in(page, journey, journey.enrolling_email)
    await page.goto(journey.server.url + "/account/security")


async def _forgot_password_sent(journey: Journey, page: Any) -> None:
    await page.goto(journey.server.url + "/forgot-password")
    await page.get_by_label("Email").fill(unique_email("nobody"))  # same answer for anyone
    await page.get_by_role("button", name="Send the link").click()
    await page.wait_for_url(journey.server.url + "/forgot-password")


async def _identity_link(journey: Journey, page: Any) -> None:
    """Sign in at the provider, which vouches for the password account's address: Gatehouse
    asks for that account's password before linking. The stand-in provider has no pages of its
    own, so the browser follows the button to Gatehouse's redirect and returns straight away
    with the code the provider issued (the request shares the page's cookies)."""
    await page.goto(journey.server.url + "/sign-in")
    button = page.get_by_role("link", name=f"Continue with {PROVIDER_LABEL}")
    start = await page.request.get(
        journey.server.url + (await button.get_attribute("href")), max_redirects=0
    )
    to_provider = start.headers["location"]
    assert to_provider.startswith(journey.stub.url + "/authorize?"), to_provider
    query = {k: v[0] for k, v in parse_qs(urlsplit(to_provider).query).items()}
    code = new_code()
    claims = journey.stub.claims(nonce=query["nonce"], sub=code, email=journey.email)
    journey.stub.issue(code, claims)
    await page.goto(
        query["redirect_uri"] + "?" + urlencode({"code": code, "state": query["state"]})
    )
    await page.wait_for_url(f"{journey.server.url}/sign-in/{PROVIDER}/link")


PAGES = [
    Page("sign-in", path("/sign-in"), "Sign in", browser="anonymous"),
    Page(
        "sign-in-for-a-client",
        path(lambda j: Authorization(j.pending_client).url()),
        "Sign in to continue to",
        browser="anonymous",
    ),
    Page("sign-up", path("/sign-up"), "Create", browser="anonymous"),
    Page("account", path("/account"), "Your account"),
    Page("apps", path("/account/apps"), "Connected apps"),
    Page("credentials", path("/account/credentials"), "Connected services"),
    Page("connect", path("/connect"), "Connect a client"),
    Page("security", path("/account/security"), "Sign-in security"),
    Page("security-setting-up-totp", _totp_setup, "Sign-in security", browser="fresh"),
    Page("second-factor", _second_factor, "One more step", browser="fresh"),
    Page("change-email", path("/account/email"), "Change your email address"),
    Page(
        "verify-email",
        path(lambda j: urlsplit(j.verify_link)._replace(scheme="", netloc="").geturl()),
        "Confirm your email address",
        browser="anonymous",
    ),
    Page("forgot-password", path("/forgot-password"), "Forgot", browser="anonymous"),
    Page(
        "reset-password",
        path(lambda j: urlsplit(j.reset_link)._replace(scheme="", netloc="").geturl()),
        "Choose a new password",
        browser="anonymous",
    ),
    Page("forgot-password-sent", _forgot_password_sent, "Check your email", browser="anonymous"),
    Page(
        "error-link-no-longer-works",
        path("/reset-password?token=no-such-token"),
        "This link no longer works",
        browser="anonymous",
    ),
    Page("identity-link", _identity_link, f"Link {PROVIDER_LABEL}", browser="fresh"),
    Page(
        "identity-refusal",
        path(f"/sign-in/{PROVIDER}/link"),  # no link under way: the provider's refusal page
        f"Signing in with {PROVIDER_LABEL}",
        browser="anonymous",
    ),
    Page("consent", path(lambda j: Authorization(j.pending_client).url()), "", consent=True),
    Page(
        "error-unknown-client",
        path("/authorize?client_id=no-such-client&response_type=code"),
        "",
        browser="anonymous",
    ),
    Page("error-not-found", path("/no-such-page"), "", browser="anonymous"),
    Page("error-method-not-allowed", path("/sign-out"), "", browser="anonymous"),
    Page("error-consent-without-a-request", path("/consent"), ""),
]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("SCREENSHOT_DIR")
    folder = Path(named) if named else tmp_path_factory.mktemp("page-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\npage screenshots: {folder}")  # noqa: T201 - the folder a person reviews
    return folder


@pytest.fixture(scope="module")
def stub() -> Iterator[StubIdp]:
    with stub_idp.running_stub() as idp:
        yield idp


@pytest.fixture(scope="module")
def server(
    backend: Backend, stub: StubIdp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """`gatehouse serve` with one sign-in provider (so the sign-in page shows its button), and
    no SMTP_URL: as in development, each message is written to the server's log."""
    live = start_server(
        backend,
        tmp_path_factory.mktemp("fit"),
        OIDC_PROVIDERS=PROVIDER,
        OIDC_STUB_ISSUER=stub.url,
        OIDC_STUB_CLIENT_ID=stub_idp.CLIENT_ID,
        OIDC_STUB_CLIENT_SECRET=stub_idp.CLIENT_SECRET,
        OIDC_STUB_LABEL=PROVIDER_LABEL,
    )
    yield live
    live.stop()


async def mailed_link(server: LiveServer, route: str, email: str) -> str:
    """The newest `route` link in a message to `email` that the server wrote to its log."""
    pattern = re.compile(
        rf"To: +{re.escape(email)}\n.*?(http://\S+{re.escape(route)}\?token=[A-Za-z0-9_\-]+)",
        re.DOTALL,
    )
    deadline = time.monotonic() + 30
    while not (found := pattern.findall(server.log.read_text())):
        assert time.monotonic() < deadline, f"no {route} link to {email} in {server.log}"
        await asyncio.sleep(0.1)
    return str(found[-1])


@pytest.fixture(scope="module")
async def journey(server: LiveServer, stub: StubIdp, browser: Any) -> Journey:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        email = await sign_up(client, unique_email("fit"), name="Ada Lovelace")
        approved = await register(client, client_name="Notes for Ada: a long client name here")
        pending = await register(client, client_name="Research Assistant Desktop")
        await form_post(client, "/forgot-password", "/forgot-password", {"email": email})
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        totp_email = await sign_up(client, unique_email("fit-totp"))
        await enrol_totp(client)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        enrolling_email = await sign_up(client, unique_email("fit-enrolling"))
        await form_post(client, "/account/security", "/account/security/totp", {})
    async with httpx.AsyncClient(
        base_url=server.url, headers={"User-Agent": LONG_USER_AGENT}
    ) as other:  # a second session, with a long User-Agent, on the account page
        await form_post(other, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD})
    journey = Journey(
        server,
        stub,
        email,
        approved["client_id"],
        pending["client_id"],
        totp_email,
        enrolling_email,
        verify_link=await mailed_link(server, "/verify-email", email),
        reset_link=await mailed_link(server, "/reset-password", email),
    )
    context = await browser.new_context()
    await _approve_once(context, journey)
    await context.close()
    return journey


async def _sign_in(page: Any, journey: Journey, email: str = "", then: str = "/account") -> None:
    await page.goto(journey.server.url + "/sign-in")
    await page.get_by_label("Email").fill(email or journey.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await page.wait_for_url(journey.server.url + then)


async def _approve_once(context: Any, journey: Journey) -> None:
    async def back_in_the_app(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/plain", body="back in the app")

    await context.route(REDIRECT_URI + "**", back_in_the_app)
    page = await context.new_page()
    await _sign_in(page, journey)
    await page.goto(journey.server.url + Authorization(journey.approved_client).url())
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_url(REDIRECT_URI + "**")


@dataclass
class Viewport:
    name: str
    size: dict[str, int]
    anonymous: Any  # a browser context that never signs in
    signed_in: Any  # a browser context signed in as the journey's account


@pytest.fixture(scope="module", params=sorted(VIEWPORTS))
async def viewport(
    request: pytest.FixtureRequest, browser: Any, journey: Journey
) -> AsyncIterator[Viewport]:
    width, height = VIEWPORTS[request.param]
    size = {"width": width, "height": height}
    anonymous = await browser.new_context(viewport=size)
    signed_in = await browser.new_context(viewport=size)
    await _sign_in(await signed_in.new_page(), journey)
    yield Viewport(request.param, size, anonymous, signed_in)
    await anonymous.close()
    await signed_in.close()


@pytest.mark.parametrize("page_spec", PAGES, ids=[p.name for p in PAGES])
async def test_the_page_fits_without_horizontal_scrolling(
    page_spec: Page,
    viewport: Viewport,
    journey: Journey,
    screenshots: Path,
    browser: Any,
) -> None:
    width, height = viewport.size["width"], viewport.size["height"]
    fresh = (
        await browser.new_context(viewport=viewport.size) if page_spec.browser == "fresh" else None
    )
    context = {"anonymous": viewport.anonymous, "signed-in": viewport.signed_in}.get(
        page_spec.browser, fresh
    )
    page = await context.new_page()
    await page_spec.reach(journey, page)
    heading = " ".join((await page.locator("h1").first.text_content() or "").split())
    # Measured before any screenshot: a full-page screenshot resizes the viewport for a moment.
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    boxes = {}
    if page_spec.consent:
        for name in ("Approve", "Deny"):
            boxes[name] = await page.get_by_role("button", name=name).bounding_box()
        await page.screenshot(
            path=str(screenshots / f"{page_spec.name}-{viewport.name}-first-screen.png")
        )
    await page.screenshot(
        path=str(screenshots / f"{page_spec.name}-{viewport.name}.png"), full_page=True
    )
    assert heading.startswith(page_spec.heading), (page_spec.name, heading)
    assert scroll_width <= width, f"{page_spec.name} is {scroll_width} px wide at {width} px"
    for name, box in boxes.items():
        assert box is not None, name
        assert box["y"] >= 0, (name, box)
        assert box["y"] + box["height"] <= height, (name, box)
    await page.close()
    if fresh is not None:
        await fresh.close()


async def test_sign_in_for_a_client_names_it(journey: Journey, browser: Any) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(journey.server.url + Authorization(journey.pending_client).url())
    heading = await page.get_by_role("heading", level=1).text_content()
    assert " ".join((heading or "").split()) == (
        "Sign in to continue to Research Assistant Desktop"
    )
    await page.get_by_role("link", name="Create one").click()
    heading = await page.get_by_role("heading", level=1).text_content()
    assert " ".join((heading or "").split()) == (
        "Create an account to continue to Research Assistant Desktop"
    )
    await context.close()


async def test_the_connect_page_copies_the_mcp_url(journey: Journey, browser: Any) -> None:
    context = await browser.new_context()
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    await _sign_in(page, journey)
    await page.get_by_role("link", name="Connect a client").first.click()
    await page.wait_for_url(journey.server.url + "/connect")
    url = journey.server.url + "/mcp"
    assert (await page.locator("#mcp-url").text_content() or "").strip() == url
    await page.get_by_role("button", name="Copy").click()
    assert await page.evaluate("navigator.clipboard.readText()") == url
    assert await page.get_by_role("button", name="Copied").count() == 1
    for client in ("Claude", "ChatGPT", "Cursor", "VS Code", "Claude Code", "MCP Inspector"):
        assert await page.get_by_role("heading", name=client).count() >= 1, client
    await context.close()


async def test_sessions_show_device_names_with_the_raw_string_on_demand(
    journey: Journey, browser: Any
) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    await _sign_in(page, journey)
    devices = page.locator("td.device")
    names = [" ".join((t or "").split()) for t in await devices.all_inner_texts()]
    assert any(name.startswith("Chrome on Linux") for name in names), names
    raw = page.locator("td.device details code").filter(has_text="ExtraToken/1.0")
    assert not await raw.is_visible()
    await page.locator("td.device details").filter(has_text="ExtraToken").locator("summary").click()
    assert await raw.is_visible()
    await context.close()
