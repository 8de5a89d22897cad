"""A lock-out cannot be used against the owner (OWASP Authentication Cheat Sheet, account lockout).

Failures are limited per (account, address), per address and per account for browsers the
account does not know; a browser that has signed in to the account before carries a signed
device cookie and is held only by its own failures. The owner is told when failures pile up.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from app.audit import AuditEvent
from app.config import Settings
from tests.conftest import Backend, client_for, make_settings, running_app
from tests.helpers import PASSWORD, db_all, sign_in, sign_up, user_by_email

WRONG = "definitely not the password"


def lockable(backend: Backend, tmp_path: Path) -> Settings:
    return make_settings(
        backend,
        tmp_path,
        signin_limit_account="3 per 15 minutes",
        signin_limit_ip="1000 per 15 minutes",
        signin_limit_account_total="8 per 15 minutes",
    )


async def test_a_locked_out_attacker_does_not_lock_out_the_owners_known_browser(
    backend: Backend, tmp_path: Path
) -> None:
    settings = lockable(backend, tmp_path)
    async with running_app(settings) as app, client_for(app, "203.0.113.10") as owner:
        email = await sign_up(owner)
        owner.cookies.delete("gh_session")
        # Failures from four addresses: two of them exhaust their (account, address) allowance,
        # and together they use the account's allowance for unknown browsers.
        for n in range(4):
            async with client_for(app, f"198.51.100.{n}") as attacker:
                for _ in range(3 if n < 2 else 1):
                    assert (await sign_in(attacker, email, WRONG)).status_code == 401
        async with client_for(app, "198.51.100.0") as attacker:
            locked = await sign_in(attacker, email)  # even the right password, from there
            assert locked.status_code == 429
            assert int(locked.headers["retry-after"]) >= 1
        async with client_for(app, "192.0.2.44") as stranger:
            # A browser the account has never seen, from a fresh address, is refused too now.
            assert (await sign_in(stranger, email)).status_code == 429
        # The owner's own browser is held by none of it.
        response = await sign_in(owner, email)
        assert response.status_code == 303
        assert response.headers["location"] == "/account"

        user = await user_by_email(app, email)
        rows = await db_all(
            app,
            select(AuditEvent).where(
                AuditEvent.user_id == user.id, AuditEvent.kind == "signin.failures_piling"
            ),
        )
    (notice,) = (row[0] for row in rows)
    assert notice.detail["failures"] == 4  # half the allowance: the first notice
    assert notice.detail["limit"] == 8


async def test_a_known_browser_is_still_held_by_its_own_failures(
    backend: Backend, tmp_path: Path
) -> None:
    settings = lockable(backend, tmp_path)
    async with running_app(settings) as app, client_for(app, "203.0.113.11") as owner:
        email = await sign_up(owner)
        owner.cookies.delete("gh_session")
        for _ in range(3):
            assert (await sign_in(owner, email, WRONG)).status_code == 401
        assert (await sign_in(owner, email)).status_code == 429


async def test_a_device_cookie_is_only_good_for_the_account_it_signed_in_to(
    backend: Backend, tmp_path: Path
) -> None:
    settings = lockable(backend, tmp_path)
    async with (
        running_app(settings) as app,
        client_for(app, "203.0.113.12") as owner,
        client_for(app, "203.0.113.13") as other,
    ):
        victim = await sign_up(owner)
        owner.cookies.delete("gh_session")
        mine = await sign_up(other)  # `other` is known to its own account only
        other.cookies.delete("gh_session")
        assert mine != victim
        for _ in range(3):
            assert (await sign_in(other, victim, WRONG)).status_code == 401
        assert (await sign_in(other, victim)).status_code == 429
        # A tampered device cookie counts for nothing either.
        forged = owner.cookies["gh_device"][:-2] + "00"
        async with client_for(app, "203.0.113.13") as tamperer:
            tamperer.cookies.set("gh_device", forged)
            assert (await sign_in(tamperer, victim, PASSWORD)).status_code == 429
        assert (await sign_in(owner, victim)).status_code == 303
