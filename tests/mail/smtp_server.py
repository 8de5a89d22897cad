"""A real SMTP server for the tests (aiosmtpd on a free loopback port), keeping every message.

Messages are parsed with the standard `email` package, as a mail client would read them.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port

USERNAME = "mailer"
PASSWORD = "mail-pass-Ww3"  # noqa: S105 - the test server's own
LINK_RE = re.compile(r"https?://[^\s<>\"']+")


@dataclass(frozen=True)
class Received:
    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage
    login: str | None  # the SMTP AUTH user the client gave, if any

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        content: str = body.get_content()  # type: ignore[attr-defined]
        return content.replace("\r\n", "\n")  # as a mail client shows it

    @property
    def text(self) -> str:
        return self.part("plain")

    @property
    def html(self) -> str:
        return self.part("html")

    def link(self, path: str) -> str:
        """The one link in the plain-text part that goes to `path`."""
        links = {u for u in LINK_RE.findall(self.text) if path in u}
        assert len(links) == 1, f"expected one {path} link in:\n{self.text}"
        return links.pop()


@dataclass
class Mailbox:
    """What the server received, shared with its thread."""

    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)  # answers to give before accepting
    attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def to(self, address: str) -> list[Received]:
        with self._lock:
            return [m for m in self.received if address in m.recipients]

    async def wait_for(
        self, address: str, count: int = 1, *, timeout: float = 30
    ) -> list[Received]:
        """The first `count` messages to `address`, waiting for them to arrive."""
        deadline = time.monotonic() + timeout
        while len(found := self.to(address)) < count:
            assert time.monotonic() < deadline, f"{count} message(s) to {address} never came"
            await asyncio.sleep(0.05)
        return found

    # aiosmtpd handler hooks

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            self.attempts += 1
            if self.refusals:
                return self.refusals.pop(0)
        message = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        login = session.auth_data.login.decode() if session.auth_data else None
        with self._lock:
            self.received.append(
                Received(envelope.mail_from, tuple(envelope.rcpt_tos), message, login)
            )
        return "250 Message accepted for delivery"


def _authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == USERNAME.encode()
        and auth_data.password == PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


def run_smtp_server(**smtp_options: Any) -> tuple[Mailbox, Callable[[], None]]:
    mailbox = Mailbox(port=free_port())
    controller = Controller(
        mailbox,
        hostname=mailbox.host,
        port=mailbox.port,
        # Loopback only: plain-text AUTH is fine here (Gatehouse insists on TLS elsewhere).
        auth_require_tls=False,
        authenticator=_authenticator,
        **smtp_options,
    )
    controller.start()
    return mailbox, controller.stop


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    mailbox, stop = run_smtp_server()
    yield mailbox
    stop()
