"""HTTP routes: parse, call one service method, shape the answer."""

from fastapi import APIRouter

from miva_connect.api import connect, health, merchants, sessions

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(sessions.router)
api_router.include_router(merchants.router)
api_router.include_router(connect.router)

__all__ = ["api_router"]
