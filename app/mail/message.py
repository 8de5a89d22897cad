"""A message from a pair of templates: plain text and HTML, with the product name and URL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

from app.config import Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
# HTML parts are autoescaped; plain-text parts are text, shown as text by every mail client.
_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class Message:
    to: str
    subject: str
    text: str
    html: str
    kind: str  # which message this is, for logs and metrics: never its content

    def __repr__(self) -> str:  # the body can hold a single-use link
        return f"Message(kind={self.kind!r}, to={self.to!r})"


def product_name(settings: Settings) -> str:
    # BRAND_NAME arrives with the branding work; until then the product is Gatehouse.
    return str(getattr(settings, "brand_name", None) or "Gatehouse")


def sender(settings: Settings) -> str:
    if settings.mail_from:
        return settings.mail_from
    host = urlsplit(settings.public_url).hostname or "localhost"
    return f"{product_name(settings)} <no-reply@{host}>"


def compose(settings: Settings, kind: str, *, to: str, subject: str, **context: object) -> Message:
    """Render templates/<kind>.txt and templates/<kind>.html into one message."""
    values = {
        "product": product_name(settings),
        "public_url": settings.public_url,
        "subject": subject,
        **context,
    }
    return Message(
        to=to,
        subject=subject,
        text=_env.get_template(f"{kind}.txt").render(values),
        html=_env.get_template(f"{kind}.html").render(values),
        kind=kind,
    )
