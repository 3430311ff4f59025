"""Queries of rule sets, shadow decisions and backtest history."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.risk.models import RuleSet, ScoredTransaction, ShadowDecision


async def lock_rulesets(session: AsyncSession) -> None:
    """Serialise rule set changes (new version numbers, the one live, the one shadow)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('risk.ruleset'))"))


async def next_version(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.coalesce(func.max(RuleSet.version), 0))) or 0) + 1


async def get(session: AsyncSession, version: int, *, lock: bool = False) -> RuleSet | None:
    return await session.get(RuleSet, version, with_for_update=lock)


async def live(session: AsyncSession) -> RuleSet | None:
    found: RuleSet | None = await session.scalar(select(RuleSet).where(RuleSet.state == "live"))
    return found


async def all_versions(session: AsyncSession) -> list[RuleSet]:
    return list((await session.execute(select(RuleSet).order_by(RuleSet.version.desc()))).scalars())


async def clear_shadow(session: AsyncSession) -> None:
    await session.execute(update(RuleSet).where(RuleSet.shadow).values(shadow=False))
    await session.flush()


async def shadow_decisions(session: AsyncSession, version: int) -> list[ShadowDecision]:
    query = select(ShadowDecision).where(ShadowDecision.ruleset_version == version)
    return list((await session.execute(query)).scalars())


async def history(
    session: AsyncSession, occurred_from: datetime, occurred_to: datetime, limit: int
) -> AsyncIterator[ScoredTransaction]:
    query = (
        select(ScoredTransaction)
        .where(ScoredTransaction.occurred_at >= occurred_from, ScoredTransaction.occurred_at < occurred_to)
        .order_by(ScoredTransaction.occurred_at, ScoredTransaction.transaction_id)
        .limit(limit)
        .execution_options(yield_per=1_000)
    )
    result = await session.stream_scalars(query)
    async for row in result:
        yield row
