"""Second factors in headless Chromium against a real server: TOTP enrolment and sign-in (a
code, a recovery code, a replay refused), passkeys through Chromium's virtual authenticator
(as the first factor and as the second), and the MCP SDK's OAuth flow completed by a person with
TOTP on. The server exports telemetry to a real OTLP receiver; no secret reaches it or the log.

WebAuthn needs a secure context and a host name as RP ID (an IP address is never valid), so the
server runs with PUBLIC_URL=http://localhost:PORT: browsers treat http://localhost as secure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.auth.mfa.support import current_step, enrol_totp
from tests.conftest import Backend, LiveServer, start_server
from tests.helpers import PASSWORD, sign_up, unique_email
from tests.mcp.sdk_harness import BrowserApprover, MemoryStorage, http_client, oauth_provider
from tests.telemetry.otlp_receiver import Receiver, start_receiver

pytestmark = pytest.mark.browser


@dataclass
class MfaServer:
    server: LiveServer
    receiver: Receiver
    secrets: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def mfa_server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MfaServer]:
    receiver, otlp = start_receiver()
    server = start_server(
        backend,
        tmp_path_factory.mktemp("mfa"),
        public_host="localhost",
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url,
        OTEL_SERVICE_NAME="gatehouse-mfa-test",
        OTEL_BSP_SCHEDULE_DELAY="100",
        LOG_FORMAT="json",
    )
    yield MfaServer(server, receiver)
    server.stop()
    otlp.shutdown()
    otlp.server_close()


async def _sign_up(page: Any, url: str) -> str:
    email = unique_email("browser-mfa")
    await page.goto(f"{url}/sign-up")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button.primary")
    await page.wait_for_url("**/connect")  # a new account lands on "Connect a client"
    return email


async def _sign_out(page: Any) -> None:
    await page.get_by_role("button", name="Sign out of Gatehouse", exact=True).click()
    await page.wait_for_url("**/sign-in")


async def _password(page: Any, url: str, email: str) -> None:
    await page.goto(f"{url}/sign-in")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("button.primary")


async def test_totp_enrol_and_sign_in_with_a_code_a_recovery_code_and_not_a_replay(
    mfa_server: MfaServer, browser: Any
) -> None:
    url = mfa_server.url
    context = await browser.new_context()
    page = await context.new_page()
    email = await _sign_up(page, url)

    await page.goto(f"{url}/account/security")
    await page.click("text=Set up an authenticator app")
    secret = (await page.text_content("#totp-secret") or "").strip()
    qr = await page.locator("img.qr").get_attribute("src")
    assert qr is not None
    assert qr.startswith("data:image/svg+xml")  # drawn here: no QR service sees the secret
    step = current_step()
    await page.fill("#totp-code", pyotp.TOTP(secret).at(step * 30))
    await page.click("text=Turn on")
    codes = await page.locator(".recovery-code").all_text_contents()
    assert len(codes) == 10
    mfa_server.secrets.update(
        {"totp secret": secret, **{f"code {i}": c for i, c in enumerate(codes)}}
    )

    await _sign_out(page)
    await _password(page, url, email)
    await page.wait_for_url("**/second-factor")
    code = pyotp.TOTP(secret).at((step + 1) * 30)
    await page.fill("#code", code)
    await page.click("text=Continue")
    await page.wait_for_url("**/account")
    assert await page.text_content("#account-email") == email

    await _sign_out(page)
    await _password(page, url, email)
    await page.wait_for_url("**/second-factor")
    await page.fill("#code", code)  # the same code again
    await page.click("text=Continue")
    error = page.locator("p.error")
    await error.wait_for()
    assert "already used" in (await error.text_content() or "")
    assert page.url.endswith("/second-factor")

    await page.fill("#code", codes[0])
    await page.click("text=Continue")
    await page.wait_for_url("**/account")
    await context.close()


async def _virtual_authenticator(context: Any, page: Any) -> Any:
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, added["authenticatorId"]


async def test_a_passkey_signs_in_alone_and_as_the_second_factor(
    mfa_server: MfaServer, browser: Any
) -> None:
    url = mfa_server.url
    context = await browser.new_context()
    page = await context.new_page()
    cdp, authenticator = await _virtual_authenticator(context, page)
    email = await _sign_up(page, url)

    await page.goto(f"{url}/account/security")
    await page.fill("#passkey-name", "Test laptop")
    await page.click("text=Add a passkey")
    await page.wait_for_url("**/account/security?notice=passkey-added")
    rows = page.locator("tr.passkey-row")
    assert await rows.count() == 1
    assert await rows.locator(".passkey-name").text_content() == "Test laptop"
    assert "never" in (await rows.text_content() or "")
    stored = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert [c["isResidentCredential"] for c in stored["credentials"]] == [True]

    # First factor: no email, no password.
    await _sign_out(page)
    async with page.expect_request(f"{url}/passkey-sign-in") as posted:
        await page.click("text=Sign in with a passkey")
    await page.wait_for_url("**/account")
    assert await page.text_content("#account-email") == email
    # The same signed answer again (its challenge already spent) opens nothing.
    await _sign_out(page)
    replayed = await context.request.post(
        f"{url}/passkey-sign-in",
        data=(await posted.value).post_data,
        headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": url},
        max_redirects=0,
    )
    assert replayed.status == 401
    assert "expired or was already used" in await replayed.text()
    await page.goto(f"{url}/account")
    assert "/sign-in" in page.url
    await page.click("text=Sign in with a passkey")
    await page.wait_for_url("**/account")
    await page.goto(f"{url}/account/security")
    assert "never" not in (await page.locator("tr.passkey-row").text_content() or "")

    # Second factor: the password, then the passkey instead of a code.
    await _sign_out(page)
    await _password(page, url, email)
    await page.wait_for_url("**/second-factor")
    await page.click("text=Use a passkey")
    await page.wait_for_url("**/account")
    assert await page.text_content("#account-email") == email
    await context.close()


async def test_an_mcp_client_connects_for_a_person_with_totp_on(
    mfa_server: MfaServer, browser: Any
) -> None:
    url = mfa_server.url
    async with httpx.AsyncClient(base_url=url) as web:
        email = await sign_up(web)
        totp = await enrol_totp(web)
    mfa_server.secrets["mcp person's totp secret"] = totp.secret
    context = await browser.new_context()
    approver = BrowserApprover(context, email, second_factor=totp.next_code)
    provider = oauth_provider(f"{url}/mcp", approver, MemoryStorage(), scope=None)
    async with http_client(provider) as http:
        async with Client(
            streamable_http_client(f"{url}/mcp", http_client=http), mode="auto"
        ) as client:
            result = await client.call_tool("whoami", {})
            assert not result.is_error, result
            assert result.structured_content is not None
            assert result.structured_content["email"] == email
    assert approver.consents_seen == 1
    await context.close()


async def test_no_totp_secret_or_recovery_code_reaches_telemetry_or_the_log(
    mfa_server: MfaServer,
) -> None:
    assert mfa_server.secrets, "the journeys above did not run"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not mfa_server.receiver.raw:
        time.sleep(0.2)
    mfa_server.server.stop()  # flushes; the log is complete afterwards
    exported = b"".join(mfa_server.receiver.raw)
    log = Path(mfa_server.server.log).read_bytes()
    assert exported, "nothing was exported"
    assert b"second_factor" in exported  # the sign-ins are in there
    for label, value in mfa_server.secrets.items():
        for form in {value, value.replace("-", ""), value.lower()}:
            assert form.encode() not in exported, f"{label} leaked into telemetry"
            assert form.encode() not in log, f"{label} leaked into the log"
