"""Every page fits a phone (360 px) and a laptop (1280 px) without horizontal scrolling, and the
consent page's Approve/Deny are on the first screen. Headless Chromium against a real server.

PAGES is the table: a name, how to reach the page, and whether it needs a signed-in browser.
Pages added later (identity providers, recovery, second factors) are appended here. Screenshots
of each page at each size go to the folder printed at the start (SCREENSHOT_DIR, or under the
pytest temporary directory) for a person to look at.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer
from tests.helpers import PASSWORD, form_post, sign_up, unique_email
from tests.oauth.flow import REDIRECT_URI, Authorization, register

pytestmark = pytest.mark.browser

VIEWPORTS = {"phone": (360, 740), "laptop": (1280, 800)}
LONG_USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36" + " ExtraToken/1.0" * 20
)


@dataclass
class Journey:
    """What the pages need: a live server, an account, a client approved once (so
    /account/apps has a row) and a client never approved (so /authorize shows consent)."""

    server: LiveServer
    email: str
    approved_client: str
    pending_client: str


Reach = Callable[[Journey], str]


@dataclass(frozen=True)
class Page:
    name: str
    reach: Reach
    signed_in: bool = True
    consent: bool = False  # the Approve/Deny buttons must be on the first screen


def path(value: str) -> Reach:
    return lambda _journey: value


PAGES = [
    Page("sign-in", path("/sign-in"), signed_in=False),
    Page(
        "sign-in-for-a-client",
        lambda j: Authorization(j.pending_client).url(),
        signed_in=False,
    ),
    Page("sign-up", path("/sign-up"), signed_in=False),
    Page("account", path("/account")),
    Page("apps", path("/account/apps")),
    Page("credentials", path("/account/credentials")),
    Page("connect", path("/connect")),
    Page("consent", lambda j: Authorization(j.pending_client).url(), consent=True),
    Page(
        "error-unknown-client",
        path("/authorize?client_id=no-such-client&response_type=code"),
        signed_in=False,
    ),
    Page("error-not-found", path("/no-such-page"), signed_in=False),
    Page("error-method-not-allowed", path("/sign-out"), signed_in=False),
    Page("error-consent-without-a-request", path("/consent"), signed_in=True),
]


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    named = os.environ.get("SCREENSHOT_DIR")
    folder = Path(named) if named else tmp_path_factory.mktemp("page-screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\npage screenshots: {folder}")  # noqa: T201 - the folder a person reviews
    return folder


@pytest.fixture(scope="module")
async def journey(live_server: LiveServer, browser: Any) -> Journey:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        email = await sign_up(client, unique_email("fit"), name="Ada Lovelace")
        approved = await register(client, client_name="Notes for Ada: a long client name here")
        pending = await register(client, client_name="Research Assistant Desktop")
    async with httpx.AsyncClient(
        base_url=live_server.url, headers={"User-Agent": LONG_USER_AGENT}
    ) as other:  # a second session, with a long User-Agent, on the account page
        await form_post(other, "/sign-in", "/sign-in", {"email": email, "password": PASSWORD})
    journey = Journey(live_server, email, approved["client_id"], pending["client_id"])
    context = await browser.new_context()
    await _approve_once(context, journey)
    await context.close()
    return journey


async def _sign_in(page: Any, journey: Journey) -> None:
    await page.goto(journey.server.url + "/sign-in")
    await page.get_by_label("Email").fill(journey.email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(journey.server.url + "/account")


async def _approve_once(context: Any, journey: Journey) -> None:
    async def back_in_the_app(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/plain", body="back in the app")

    await context.route(REDIRECT_URI + "**", back_in_the_app)
    page = await context.new_page()
    await _sign_in(page, journey)
    await page.goto(journey.server.url + Authorization(journey.approved_client).url())
    await page.get_by_role("button", name="Approve").click()
    await page.wait_for_url(REDIRECT_URI + "**")


@pytest.fixture(scope="module", params=sorted(VIEWPORTS))
async def viewport(
    request: pytest.FixtureRequest, browser: Any, journey: Journey
) -> AsyncIterator[tuple[str, Any, Any]]:
    """(size name, an anonymous context, a signed-in context) at one viewport size."""
    width, height = VIEWPORTS[request.param]
    size = {"width": width, "height": height}
    anonymous = await browser.new_context(viewport=size)
    signed_in = await browser.new_context(viewport=size)
    await _sign_in(await signed_in.new_page(), journey)
    yield request.param, anonymous, signed_in
    await anonymous.close()
    await signed_in.close()


Measure = Callable[[Any], Awaitable[Any]]


@pytest.mark.parametrize("page_spec", PAGES, ids=[p.name for p in PAGES])
async def test_the_page_fits_without_horizontal_scrolling(
    page_spec: Page,
    viewport: tuple[str, Any, Any],
    journey: Journey,
    screenshots: Path,
) -> None:
    size, anonymous, signed_in = viewport
    width, height = VIEWPORTS[size]
    page = await (signed_in if page_spec.signed_in else anonymous).new_page()
    await page.goto(journey.server.url + page_spec.reach(journey))
    # Measured before any screenshot: a full-page screenshot resizes the viewport for a moment.
    scroll_width = await page.evaluate("document.documentElement.scrollWidth")
    boxes = {}
    if page_spec.consent:
        for name in ("Approve", "Deny"):
            boxes[name] = await page.get_by_role("button", name=name).bounding_box()
        await page.screenshot(path=str(screenshots / f"{page_spec.name}-{size}-first-screen.png"))
    await page.screenshot(path=str(screenshots / f"{page_spec.name}-{size}.png"), full_page=True)
    assert scroll_width <= width, f"{page_spec.name} is {scroll_width} px wide at {width} px"
    for name, box in boxes.items():
        assert box is not None, name
        assert box["y"] >= 0, (name, box)
        assert box["y"] + box["height"] <= height, (name, box)
    await page.close()


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
