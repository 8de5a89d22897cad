"""Sign-in limits: count first, then check the password; slow down, then refuse.

Every attempt is counted (an atomic increment, in memory or in Redis) *before* the password is
checked, so a burst of concurrent guesses cannot all be evaluated before the first is counted:
at most the limit ever reach argon2.

What is counted, and what refuses (OWASP Authentication Cheat Sheet, "Account Lockout": lock-out
must not let an attacker lock out a legitimate user; see app/auth/devices.py):
- a browser that signed in to this account before (device cookie): its own attempts, per
  (account, device), SIGNIN_LIMIT_ACCOUNT; nobody else's failures hold it;
- any other browser: per (account, address) SIGNIN_LIMIT_ACCOUNT, per address SIGNIN_LIMIT_IP,
  and per account from all addresses SIGNIN_LIMIT_ACCOUNT_TOTAL.
Once half an allowance is used, each further failure is answered only after SLOWDOWN seconds.
When failures to a known account pile up, its owner is told (`signin.failures_piling`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

from limits import RateLimitItem
from sqlalchemy.ext.asyncio import AsyncSession

from app import audit
from app.config import Settings
from app.kit.ratelimit import RateLimits, Verdict

logger = logging.getLogger("gatehouse.auth")

SLOWDOWN = 1.0  # seconds added to a failure once half an allowance is used
NOTICE_EVERY = "1 per 15 minutes"  # at most one failures-piling notice per account


@dataclass(frozen=True)
class Attempt:
    account: str  # the normalised, lower-cased email as typed (known account or not)
    ip: str
    user_id: uuid.UUID | None
    device: str | None  # set when this browser signed in to this account before


async def notify_owner_of_failures(
    session: AsyncSession, *, user_id: uuid.UUID, failures: int, addresses_limited: bool
) -> None:
    """Hook: tell the account's owner that sign-in failures are piling up.

    There is no outgoing mail yet; when app/mail/ lands, send the notice from here. Until then
    the audit event and the log line (below, in `SignInLimits.failed`) are the notice.
    """


class SignInLimits:
    def __init__(self, limits: RateLimits, settings: Settings) -> None:
        self.limits = limits
        self.per_account = limits.rule(settings.signin_limit_account)
        self.per_ip = limits.rule(settings.signin_limit_ip)
        self.total = limits.rule(settings.signin_limit_account_total)
        self.notice = limits.rule(NOTICE_EVERY)

    def _buckets(self, attempt: Attempt) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        if attempt.device is not None:
            return [(self.per_account, ("signin-device", attempt.account, attempt.device))]
        return [
            (self.per_account, ("signin-account-ip", attempt.account, attempt.ip)),
            (self.per_ip, ("signin-ip", attempt.ip)),
            (self.total, ("signin-account", attempt.account)),
        ]

    async def admit(self, attempt: Attempt) -> Verdict:
        """Count this attempt; refused (with Retry-After) when an allowance was already used."""
        refusal: Verdict | None = None
        for rule, key in self._buckets(attempt):
            verdict = await self.limits.hit(rule, *key)
            if not verdict.allowed and (
                refusal is None or verdict.retry_after > refusal.retry_after
            ):
                refusal = verdict
        return refusal or Verdict(True)

    async def succeeded(self, attempt: Attempt) -> None:
        """The right password: this browser's count for this account starts again."""
        rule, key = self._buckets(attempt)[0]
        await self.limits.clear(rule, *key)

    async def failed(self, session: AsyncSession, attempt: Attempt) -> None:
        """After a wrong password: notify the owner if failures pile up, then slow down."""
        used = 0.0
        for rule, key in self._buckets(attempt):
            left = await self.limits.remaining(rule, *key)
            used = max(used, 1 - left / rule.amount)
        if attempt.user_id is not None and attempt.device is None:
            await self._maybe_notify(session, attempt, attempt.user_id)
        if used >= 0.5:
            await asyncio.sleep(SLOWDOWN)

    async def _maybe_notify(
        self, session: AsyncSession, attempt: Attempt, user_id: uuid.UUID
    ) -> None:
        failures = self.total.amount - await self.limits.remaining(
            self.total, "signin-account", attempt.account
        )
        if failures * 2 < self.total.amount:
            return
        if not (await self.limits.hit(self.notice, "signin-notice", attempt.account)).allowed:
            return
        limited = failures >= self.total.amount
        audit.record(
            session,
            "signin.failures_piling",
            user_id=user_id,
            ip=attempt.ip,
            failures=failures,
            limit=self.total.amount,
            unknown_browsers_refused=limited,
        )
        logger.warning(
            "sign-in failures piling up for user %s: %d from unknown browsers in the window",
            user_id,
            failures,
        )
        await notify_owner_of_failures(
            session, user_id=user_id, failures=failures, addresses_limited=limited
        )
