"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from miva_connect.api.deps import ReadinessDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def liveness() -> dict[str, str]:
    """The process is up; touches nothing else."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "Not ready, with the reasons."}})
async def readiness(readiness: ReadinessDep) -> JSONResponse:
    """Database reachable, schema at head, encryption keys open stored data."""
    problems = await readiness.problems()
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ok"})
