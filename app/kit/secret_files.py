"""Development secrets kept in files: generated once (mode 0600), then read back."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger("gatehouse.config")


def holds(path: Path, value: str) -> bool:
    """Whether the file at `path` holds `value` (a generated development secret)."""
    try:
        return path.read_text().strip() == value
    except OSError:
        return False


def generate_once(path: Path, fresh: str, *, variable: str) -> str:
    """The value in `path`, writing `fresh` there first if there is none."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write a private temporary file, then link it into place: link() fails if another
    # process got there first, and nobody ever reads a half-written key.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(fresh + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        return path.read_text().strip()
    finally:
        tmp.unlink()
    logger.warning(
        "%s was not set: generated a development value into %s (never use it in production)",
        variable,
        path,
    )
    return fresh
