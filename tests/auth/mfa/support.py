"""Helpers for the second-factor tests: enrol TOTP through the pages, compute codes."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import httpx
import pyotp

from tests.helpers import form_post

SECURITY = "/account/security"
SECRET_RE = re.compile(r'id="totp-secret">([A-Z2-7]+)<')
CODE_RE = re.compile(r'class="recovery-code">([a-z0-9-]+)<')


@dataclass
class Totp:
    secret: str
    confirmed_step: int  # the time-step whose code turned it on (already spent)
    recovery_codes: list[str]

    def code(self, step: int) -> str:
        return pyotp.TOTP(self.secret).at(step * 30)

    def next_code(self) -> str:
        """The code of the step after the enrolment one: still inside the one-step leeway."""
        return self.code(self.confirmed_step + 1)


def current_step() -> int:
    return int(time.time() // 30)


def secret_on(page: str) -> str:
    match = SECRET_RE.search(page)
    assert match, "page shows no TOTP setup key"
    return match.group(1)


def codes_on(page: str) -> list[str]:
    return CODE_RE.findall(page)


def wrong_code(secret: str) -> str:
    """A 6-digit code that is not valid at any step inside the leeway."""
    otp = pyotp.TOTP(secret)
    valid = {otp.at((current_step() + d) * 30) for d in (-2, -1, 0, 1, 2)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


async def enrol_totp(client: httpx.AsyncClient) -> Totp:
    """A signed-in client turns TOTP on through /account/security, as a person would."""
    started = await form_post(client, SECURITY, SECURITY + "/totp", {})
    assert started.status_code == 303, started.text
    page = await client.get(SECURITY)
    secret = secret_on(page.text)
    step = current_step()
    confirmed = await form_post(
        client, SECURITY, SECURITY + "/totp/confirm", {"code": pyotp.TOTP(secret).at(step * 30)}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = codes_on(confirmed.text)
    assert len(codes) == 10
    return Totp(secret, step, codes)


async def submit_code(client: httpx.AsyncClient, code: str) -> httpx.Response:
    return await form_post(client, "/second-factor", "/second-factor", {"code": code})
