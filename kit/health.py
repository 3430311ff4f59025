"""Liveness and readiness probes.

A service is ready when its database answers and its schema is **at or ahead of**
the service's migration heads. "Ahead" means the database carries a revision
this code does not know: a newer release's migration ran (the pre-sync
migration Job runs before the new pods roll out). The old pods stay ready then,
which is safe only because every migration is backward compatible for one
release (docs/deploy.md, "Migrations"): it adds, it never removes or renames
what the previous release reads or writes. A revision history is never
rewritten, so an unknown revision is always a newer one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from kit.db import get_database
from kit.errors import problem_response
from kit.migrations import current_revisions, head_revisions, known_revisions


def migration_state(applied: set[str], heads: set[str], known: set[str]) -> str:
    """``ok`` (at the heads), ``ahead`` (a newer release migrated) or ``behind``."""
    if applied and heads <= applied:
        return "ok"
    if applied - known:
        return "ahead"
    return "behind"


def health_router(schema: str, migrations_dir: Path) -> APIRouter:
    heads = head_revisions(migrations_dir)
    known = known_revisions(migrations_dir)
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get(
        "/readyz",
        summary="Readiness: database reachable and its migrations at or ahead of this release's heads",
        responses={503: {"description": "Not ready (problem details list the failing checks)"}},
    )
    async def readyz(request: Request) -> Any:
        checks: dict[str, str] = {}
        try:
            async with get_database(request).engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                checks["database"] = "ok"
                applied = await current_revisions(connection, schema)
                checks["migrations"] = migration_state(applied, heads, known)
        except Exception:  # any failure to reach the database means not ready
            checks.setdefault("database", "unreachable")
        if checks.get("database") == "ok" and checks.get("migrations") in ("ok", "ahead"):
            return JSONResponse({"status": "ready", "checks": checks})
        return problem_response(request, status=503, code="not_ready", title="Not ready", checks=checks)

    return router
