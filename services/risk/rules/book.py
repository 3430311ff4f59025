"""The live and shadow rule sets of this process, refreshed from PostgreSQL (shared by every replica)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.risk.models import RuleSet
from services.risk.rules.defaults import DEFAULT_RULES
from services.risk.rules.engine import CompiledRuleSet, Rule


@dataclass(frozen=True, slots=True)
class ActiveRules:
    live: CompiledRuleSet
    shadow: CompiledRuleSet | None


class RuleBook:
    """Compiled rule sets, re-read at most every ``refresh_seconds`` (and at once after a local change)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, refresh_seconds: float) -> None:
        self.sessionmaker = sessionmaker
        self.refresh_seconds = refresh_seconds
        self._active: ActiveRules | None = None
        self._loaded_at = 0.0
        self._compiled: dict[int, CompiledRuleSet] = {}
        self._lock = asyncio.Lock()

    def mark_stale(self) -> None:
        self._loaded_at = 0.0

    async def active(self) -> ActiveRules:
        if self._active is not None and time.monotonic() - self._loaded_at < self.refresh_seconds:
            return self._active
        async with self._lock:
            if self._active is None or time.monotonic() - self._loaded_at >= self.refresh_seconds:
                async with self.sessionmaker() as session:
                    self._active = await self._load(session)
                self._loaded_at = time.monotonic()
        assert self._active is not None
        return self._active

    def last_known(self) -> CompiledRuleSet | None:
        """The live set last read (for answering while the database is away)."""
        return self._active.live if self._active is not None else None

    def compiled(self, version: int, rules: list[Rule]) -> CompiledRuleSet:
        found = self._compiled.get(version)
        if found is None:
            found = self._compiled[version] = CompiledRuleSet(version, rules)
        return found

    async def _load(self, session: AsyncSession) -> ActiveRules:
        rows = (await session.execute(select(RuleSet).where((RuleSet.state == "live") | RuleSet.shadow))).scalars()
        live: CompiledRuleSet | None = None
        shadow: CompiledRuleSet | None = None
        for row in rows:
            compiled = self.compiled(row.version, [Rule.from_json(r) for r in row.rules])
            if row.state == "live":
                live = compiled
            if row.shadow and row.state != "live":
                shadow = compiled
        if live is None:  # no live set stored yet: the defaults, as version 1 will hold them
            live = self.compiled(1, list(DEFAULT_RULES))
        return ActiveRules(live=live, shadow=shadow)


async def ensure_default_ruleset(session: AsyncSession) -> None:
    """A new installation starts with the default rules as version 1, live (idempotent across replicas)."""
    exists = await session.scalar(select(RuleSet.version).limit(1))
    if exists is not None:
        return
    await session.execute(
        pg_insert(RuleSet)
        .values(
            version=1,
            state="live",
            rules=[rule.as_json() for rule in DEFAULT_RULES],
            comment="default rules",
            created_by="risk",
            activated_by="risk",
        )
        .on_conflict_do_nothing()
    )
