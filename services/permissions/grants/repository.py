"""Queries of roles, the permission catalog, grants, SoD rules and training records."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.permissions.models import (
    Effect,
    Grant,
    Permission,
    Role,
    RolePermission,
    SodRule,
    SubjectState,
    TrainingRecord,
)

SodRules = list[tuple[SodRule, str, str]]


async def all_roles(session: AsyncSession) -> list[Role]:
    return list((await session.execute(select(Role))).scalars())


async def role_descriptions(session: AsyncSession) -> dict[str, str]:
    return dict((await session.execute(select(Role.name, Role.description))).tuples().all())


async def role_ids_allowing_high_risk(session: AsyncSession) -> list[uuid.UUID]:
    """Roles that allow a high-risk permission themselves (inheritance not applied)."""
    query = (
        select(RolePermission.role_id)
        .join(Permission, Permission.name == RolePermission.permission)
        .where(RolePermission.effect == Effect.allow, Permission.high_risk.is_(True))
    )
    return list((await session.execute(query)).scalars())


async def role_named(session: AsyncSession, name: str) -> Role | None:
    return (await session.execute(select(Role).where(Role.name == name))).scalar_one_or_none()


async def role_name_of(session: AsyncSession, role_id: uuid.UUID) -> str:
    return (await session.execute(select(Role.name).where(Role.id == role_id))).scalar_one()


async def permission_catalog(session: AsyncSession) -> list[Permission]:
    return list((await session.execute(select(Permission).order_by(Permission.name))).scalars())


async def permission_names(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Permission.name))).scalars())


async def replace_role_permissions(
    session: AsyncSession, role_id: uuid.UUID, allows: list[str], denies: list[str]
) -> None:
    await session.execute(delete(RolePermission).where(RolePermission.role_id == role_id))
    session.add_all(
        [RolePermission(role_id=role_id, permission=p, effect=Effect.allow) for p in allows]
        + [RolePermission(role_id=role_id, permission=p, effect=Effect.deny) for p in denies]
    )
    await session.flush()


async def grants_in_force(session: AsyncSession, now: datetime, subject: str | None) -> list[tuple[Grant, str]]:
    """Grants not revoked and not expired at ``now``, with their role names, oldest first."""
    query = (
        select(Grant, Role.name)
        .join(Role, Role.id == Grant.role_id)
        .where(Grant.revoked_at.is_(None), (Grant.expires_at.is_(None)) | (Grant.expires_at > now))
        .order_by(Grant.created_at)
    )
    if subject is not None:
        query = query.where(Grant.subject == subject)
    return [(grant, name) for grant, name in (await session.execute(query)).tuples()]


async def grants_any_state(session: AsyncSession, subject: str | None, limit: int) -> list[tuple[Grant, str]]:
    query = select(Grant, Role.name).join(Role, Role.id == Grant.role_id).order_by(Grant.created_at)
    if subject is not None:
        query = query.where(Grant.subject == subject)
    return [(g, n) for g, n in (await session.execute(query.limit(limit))).tuples()]


async def grant_for_update(session: AsyncSession, grant_id: uuid.UUID) -> Grant | None:
    query = select(Grant).where(Grant.id == grant_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def sod_rules(session: AsyncSession) -> SodRules:
    """Every SoD rule with the names of its two roles."""
    a, b = aliased(Role), aliased(Role)
    query = select(SodRule, a.name, b.name).join(a, a.id == SodRule.role_a_id).join(b, b.id == SodRule.role_b_id)
    return [(rule, name_a, name_b) for rule, name_a, name_b in (await session.execute(query)).tuples()]


async def sod_rule_between(session: AsyncSession, role_a: uuid.UUID, role_b: uuid.UUID) -> SodRule | None:
    """The rule on this pair of roles, whichever side each is on."""
    query = select(SodRule).where(
        ((SodRule.role_a_id == role_a) & (SodRule.role_b_id == role_b))
        | ((SodRule.role_a_id == role_b) & (SodRule.role_b_id == role_a))
    )
    return (await session.execute(query)).scalar_one_or_none()


async def subject_state(session: AsyncSession, subject: str) -> SubjectState | None:
    return await session.get(SubjectState, subject)


async def latest_training(session: AsyncSession, subject: str, course: str, now: datetime) -> TrainingRecord | None:
    """The subject's record of ``course`` that runs longest, if one is current at ``now``."""
    query = (
        select(TrainingRecord)
        .where(TrainingRecord.subject == subject, TrainingRecord.course == course, TrainingRecord.expires_at > now)
        .order_by(TrainingRecord.expires_at.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()
