"""Liveness and readiness probes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from kit.db import get_database
from kit.errors import problem_response
from kit.migrations import current_revisions, head_revisions


def health_router(schema: str, migrations_dir: Path) -> APIRouter:
    heads = head_revisions(migrations_dir)
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database reachable and migrations at head",
        responses={503: {"description": "Not ready (problem details list the failing checks)"}},
    )
    async def readyz(request: Request) -> Any:
        checks: dict[str, str] = {}
        try:
            async with get_database(request).engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                checks["database"] = "ok"
                applied = await current_revisions(connection, schema)
                checks["migrations"] = "ok" if applied == heads else "behind"
        except Exception:  # any failure to reach the database means not ready
            checks.setdefault("database", "unreachable")
        if all(value == "ok" for value in checks.values()) and "migrations" in checks:
            return JSONResponse({"status": "ready", "checks": checks})
        return problem_response(request, status=503, code="not_ready", title="Not ready", checks=checks)

    return router
