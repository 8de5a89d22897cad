"""Every feature's models, imported so Alembic and create_all see one metadata."""

from app.audit import AuditEvent
from app.auth.models import BrowserSession, User
from app.db import Base

__all__ = ["AuditEvent", "Base", "BrowserSession", "User"]
