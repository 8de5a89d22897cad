"""Where a message goes: an SMTP server (SMTP_URL), or, in development without one, the log."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

from app.config import ConfigError, Settings
from app.kit.hosts import is_loopback_host
from app.mail.message import Message, sender

DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


class Transport(Protocol):
    async def send(self, message: Message) -> None: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    use_tls: bool  # smtps://: TLS from the first byte
    start_tls: bool | None  # None: upgrade when the server offers STARTTLS; True: insist
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def smtp_target(settings: Settings) -> SmtpTarget:
    if settings.smtp_url is None:
        raise ConfigError("SMTP_URL is not set")
    parts = urlsplit(settings.smtp_url.get_secret_value())
    host = parts.hostname or ""
    implicit_tls = parts.scheme == "smtps"
    username = settings.smtp_username or (unquote(parts.username) if parts.username else None)
    password = (
        settings.smtp_password.get_secret_value()
        if settings.smtp_password is not None
        else (unquote(parts.password) if parts.password else None)
    )
    # A password never crosses the network in the clear: with credentials, a server that is
    # not on this machine must offer STARTTLS (or be smtps://), or the send fails.
    must_encrypt = username is not None and not is_loopback_host(host)
    return SmtpTarget(
        host=host,
        port=parts.port or DEFAULT_PORTS[parts.scheme],
        use_tls=implicit_tls,
        start_tls=False if implicit_tls else (True if must_encrypt else None),
        username=username,
        password=password,
    )


def to_email(settings: Settings, message: Message) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender(settings)
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False)
    email["Message-ID"] = make_msgid(domain=urlsplit(settings.public_url).hostname or None)
    # RFC 3834 §5: mark machine-made mail so auto-responders do not answer it.
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(message.text)
    email.add_alternative(message.html, subtype="html")
    return email


class SmtpTransport:
    def __init__(self, settings: Settings, *, timeout: float) -> None:
        self.settings = settings
        self.target = smtp_target(settings)
        self.timeout = timeout

    def describe(self) -> str:
        scheme = "smtps" if self.target.use_tls else "smtp"
        return f"{scheme}://{self.target.host}:{self.target.port}"  # never the credentials

    async def send(self, message: Message) -> None:
        # Imported here, for memory: ~1 MiB of modules a server without SMTP_URL never needs.
        import aiosmtplib

        target = self.target
        await aiosmtplib.send(
            to_email(self.settings, message),
            hostname=target.host,
            port=target.port,
            username=target.username,
            password=target.password,
            use_tls=target.use_tls,
            start_tls=target.start_tls,
            timeout=self.timeout,
        )


class _Stderr(logging.Handler):
    """Writes to whatever sys.stderr is now (the server log), unscrubbed: see LogTransport."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


dev_log = logging.getLogger("gatehouse.mail.development")
dev_log.propagate = False
dev_log.setLevel(logging.INFO)
if not dev_log.handlers:
    dev_log.addHandler(_Stderr())


class LogTransport:
    """Development without SMTP_URL: each message is one readable block in the log.

    This is the one log writer that is not scrubbed, on purpose: the link is what the developer
    needs. It never runs in production, where a missing SMTP_URL stops the start-up.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.is_production and settings.email_flows:
            raise ConfigError("SMTP_URL is required in production")
        self.settings = settings

    def describe(self) -> str:
        return "the log (SMTP_URL is not set)"

    async def send(self, message: Message) -> None:
        rule = "-" * 72
        dev_log.info(
            "\n".join(
                [
                    f"{rule}\nmail not sent (no SMTP_URL): written here instead",
                    f"From:    {sender(self.settings)}",
                    f"To:      {message.to}",
                    f"Subject: {message.subject}",
                    "",
                    message.text.strip(),
                    rule,
                ]
            )
        )


def transport_for(settings: Settings, *, timeout: float) -> Transport:
    if settings.smtp_url is None:
        return LogTransport(settings)
    return SmtpTransport(settings, timeout=timeout)
