"""Every second-factor page, as one router for main.py."""

from fastapi import APIRouter

from app.auth.mfa.account_routes import router as account_router
from app.auth.mfa.signin_routes import router as signin_router

router = APIRouter()
router.include_router(account_router)
router.include_router(signin_router)
