"""The application's error types: each carries the page title and message a person sees.

Rendered by the handlers in app/errors.py; defined here, below app/kit/web.py, so that web can
raise CsrfError without importing the module that renders it.
"""

from __future__ import annotations


class AppError(Exception):
    status_code = 400
    title = "Something went wrong"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        if message:
            self.message = message


class CsrfError(AppError):
    status_code = 403
    title = "This form has expired"
    message = (
        "The form could not be verified (it may be old, or sent from another site). "
        "Go back, reload the page and try again."
    )


class NotFoundError(AppError):
    status_code = 404
    title = "Not found"
    message = "There is nothing here."
