"""The messages account recovery sends (templates in app/mail/templates)."""

from __future__ import annotations

from datetime import datetime

from app.auth.models import User
from app.auth.recovery.tokens import LIFETIMES, link
from app.config import Settings
from app.mail.message import Message, compose, product_name

VERIFY_PATH = "/verify-email"
RESET_PATH = "/reset-password"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d at %H:%M UTC")


def verification(settings: Settings, user: User, token: str) -> Message:
    return compose(
        settings,
        "verify_email",
        to=user.email,
        subject=f"Confirm your email address for {product_name(settings)}",
        name=user.name,
        email=user.email,
        link=link(settings, VERIFY_PATH, token),
        hours=int(LIFETIMES["verify_email"].total_seconds() // 3600),
    )


def reset_link(settings: Settings, user: User, token: str) -> Message:
    return compose(
        settings,
        "reset_password",
        to=user.email,
        subject=f"Reset your {product_name(settings)} password",
        email=user.email,
        link=link(settings, RESET_PATH, token),
        minutes=int(LIFETIMES["reset_password"].total_seconds() // 60),
    )


def password_was_reset(
    settings: Settings, user: User, *, at: datetime, disconnected: bool, unlinked: int = 0
) -> Message:
    return compose(
        settings,
        "password_changed",
        to=user.email,
        subject=f"Your {product_name(settings)} password was reset",
        email=user.email,
        when=_when(at),
        disconnected=disconnected,
        unlinked=unlinked,
    )


def email_change_link(settings: Settings, user: User, new_email: str, token: str) -> Message:
    return compose(
        settings,
        "email_change_confirm",
        to=new_email,
        subject=f"Confirm your new address for {product_name(settings)}",
        old_email=user.email,
        new_email=new_email,
        link=link(settings, VERIFY_PATH, token),
        hours=int(LIFETIMES["change_email"].total_seconds() // 3600),
    )


def email_change_notice(settings: Settings, user: User, new_email: str, at: datetime) -> Message:
    return compose(
        settings,
        "email_change_notice",
        to=user.email,
        subject=f"A change of your {product_name(settings)} address was requested",
        old_email=user.email,
        new_email=new_email,
        when=_when(at),
    )
