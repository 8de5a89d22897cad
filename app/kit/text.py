"""One input boundary: text that reaches the database is valid UTF-8 without control characters.

PostgreSQL refuses a NUL in a text value, and a lone surrogate (which a JSON body can carry as
`"\\ud800"`) is not UTF-8 at all; either would surface as a database error in the middle of a
request. Control characters (C0, DEL, C1) have no place in an email, a name or an identifier, and
in a log line or a page they only confuse. So every field is checked where it enters, before any
query, and refused with an error that names the field:

    problem = text_problem(name, multiline=False)     # a page: None, or what to fix
    check_text("client_id", client_id)                # OAuth/JSON: raises BadText("client_id")
    check_fields(client_id=client_id, scope=scope)    # several at once; None values are skipped

`multiline=True` allows the three whitespace controls a text area can hold (tab, LF, CR).
"""

from __future__ import annotations

import re

# C0 controls, DEL and C1 controls; with and without the whitespace a text area may hold.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_CONTROLS_BUT_WHITESPACE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


class BadText(ValueError):
    """A field holds text that cannot be stored or shown; `field` names it."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def text_problem(value: str, *, multiline: bool = False) -> str | None:
    """What is wrong with the text, in words for a person, or None if it is fine."""
    if _SURROGATES.search(value):
        return "holds characters that are not valid UTF-8"
    if "\x00" in value:
        return "holds a NUL character"
    if (_CONTROLS_BUT_WHITESPACE if multiline else _CONTROLS).search(value):
        return "holds control characters"
    return None


def check_text(field: str, value: str | None, *, multiline: bool = False) -> None:
    """Raise BadText(field, reason) unless `value` is None or clean text."""
    if value is None:
        return
    problem = text_problem(value, multiline=multiline)
    if problem is not None:
        raise BadText(field, problem)


def check_json_strings(value: object, *, path: str = "") -> None:
    """check_text for every string (keys too) anywhere in a parsed JSON value."""
    if isinstance(value, str):
        check_text(path or "value", value)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_json_strings(item, path=f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(path or "member name", str(key))
            check_json_strings(item, path=f"{path}.{key}" if path else str(key))


def check_fields(**fields: str | None) -> None:
    """check_text for each single-line field given by name (for OAuth and JSON parameters)."""
    for field, value in fields.items():
        check_text(field, value)
