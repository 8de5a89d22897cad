"""Application errors and the handlers that render them (the types live in app/kit/errors.py)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.kit.errors import AppError, CsrfError, NotFoundError
from app.kit.web import render

__all__ = ["AppError", "CsrfError", "NotFoundError", "install_error_handlers"]


def install_error_handlers(app: FastAPI) -> None:
    async def app_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, AppError):  # pragma: no cover - registered for AppError only
            raise exc
        return render(
            request,
            "error.html",
            {"title": exc.title, "message": exc.message},
            status_code=exc.status_code,
        )

    app.add_exception_handler(AppError, app_error)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Browsers get a page for 404/405; API clients keep FastAPI's JSON."""
        if not isinstance(exc, StarletteHTTPException):  # pragma: no cover
            raise exc
        wants_html = "text/html" in request.headers.get("accept", "")
        if not wants_html or exc.status_code not in PAGE_TITLES:
            return await http_exception_handler(request, exc)
        title, message = PAGE_TITLES[exc.status_code]
        return render(
            request,
            "error.html",
            {"title": title, "message": message},
            status_code=exc.status_code,
            headers=dict(exc.headers or {}),
        )

    app.add_exception_handler(StarletteHTTPException, http_error)


PAGE_TITLES = {
    404: ("Not found", "There is nothing here."),
    405: ("Not allowed", "This page cannot be used that way. Go back and use the buttons on it."),
}
