"""The deployer's logo (BRAND_LOGO_PATH), served from our origin so the CSP stays strict."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

from app.config_checks import LOGO_TYPES
from app.kit.web import SettingsDep

router = APIRouter(tags=["pages"])


@router.get("/brand/logo", include_in_schema=False)
async def brand_logo(settings: SettingsDep) -> Response:
    if settings.brand_logo_path is None:
        return Response(status_code=404)
    path = Path(settings.brand_logo_path)
    return FileResponse(
        path,
        media_type=LOGO_TYPES[path.suffix.lower()],
        headers={
            "Cache-Control": "public, max-age=3600",
            "X-Content-Type-Options": "nosniff",
            # An SVG opened on its own runs nothing and loads nothing.
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; sandbox",
        },
    )
