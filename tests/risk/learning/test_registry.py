"""Model registry: promotion and rollback need a second person's approval (the real permissions app).

Risk and permissions run in process on databases of their own; risk reaches permissions'
check and approval-execute API through an adapter that calls the permissions app with a
service token of subject ``risk`` (what kit's PermissionClient does over the gateway).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import update

from kit.permissions import ApprovalRefused, Decision
from services.permissions.app import create as create_permissions
from services.permissions.cli import bootstrap_admin
from services.risk.app import create as create_risk
from services.risk.config import RiskSettings
from services.risk.learning import service
from services.risk.learning.active import ActiveModel
from services.risk.learning.evaluation import Metrics
from services.risk.learning.training import TrainingResult, Windows, train_and_evaluate
from services.risk.models import ModelVersion
from tests.permissions.conftest import Perms, new_subject
from tests.permissions.conftest import settings as permissions_settings
from tests.risk.learning.synthetic import START, stream
from tests.support.database import TestDatabases
from tests.support.tokens import TestIssuer

WINDOWS = Windows(START, START + timedelta(days=40), START + timedelta(days=40), START + timedelta(days=60))


@dataclass
class InProcessPermissions:
    """Risk's permission client, answered by the real permissions app in process."""

    perms: Perms

    async def check(self, subject: str, permission: str, scope: str | None = None) -> Decision:
        body = await self.perms.check(subject, permission, scope)
        return Decision(bool(body["allowed"]), str(body.get("reason", "")))

    async def execute_approval(self, approval_id: str, operation: str, payload: Any) -> dict[str, Any]:
        from kit.permissions import payload_hash

        response = await self.perms.client.post(
            f"/internal/approvals/{approval_id}/execute",
            json={"operation": operation, "payload_hash": payload_hash(payload)},
            headers=self.perms.service("risk"),
        )
        if response.status_code == 200:
            result: dict[str, Any] = response.json()
            return result
        problem = response.json()
        raise ApprovalRefused(str(problem.get("detail")), approval_code=str(problem.get("code")))


@dataclass
class Registry:
    perms: Perms
    risk: httpx.AsyncClient
    app: FastAPI
    issuer: TestIssuer
    maker: str
    checker: str
    reader: str

    def staff(self, subject: str) -> dict[str, str]:
        return self.issuer.headers(subject=subject, kind="staff")

    async def register(self, result: TrainingResult) -> ModelVersion:
        async with self.app.state.database.sessionmaker() as session:
            version = await service.register(session, result, created_by=self.maker)
            await session.commit()
            return version

    async def approval(self, payload: dict[str, Any], *, maker: str | None = None) -> str:
        response = await self.perms.client.post(
            "/staff/approvals",
            json={"operation": "risk.model_promotion", "payload": payload},
            headers=self.staff(maker or self.maker),
        )
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    async def approve(self, approval_id: str, approver: str | None = None) -> httpx.Response:
        return await self.perms.approve(approval_id, approver or self.checker)

    async def approved_change(self, path: str) -> dict[str, Any]:
        """Ask risk (learn the payload), ask permissions, let the checker approve, then execute."""
        asked = await self.risk.post(path, json={}, headers=self.staff(self.maker))
        assert asked.status_code == 403, asked.text
        assert asked.json()["code"] == "approval_required"
        approval_id = await self.approval(asked.json()["payload"])
        assert (await self.approve(approval_id)).status_code == 200
        done = await self.risk.post(path, json={"approval_id": approval_id}, headers=self.staff(self.maker))
        assert done.status_code == 200, done.text
        body: dict[str, Any] = done.json()
        return body


@pytest.fixture(scope="module")
def trained() -> TrainingResult:
    return train_and_evaluate(stream(), WINDOWS, rounds=40)


@pytest.fixture(scope="module")
async def registry(test_databases: TestDatabases) -> AsyncIterator[Registry]:
    issuer = TestIssuer()
    permissions_app = create_permissions(permissions_settings(await test_databases.clone("perm")))
    risk_app = create_risk(
        RiskSettings(
            environment="test",
            database_url=SecretStr(await test_databases.clone("risk")),
            gateway_url="http://127.0.0.1:9",
            log_json=False,
            outbox_enabled=False,
            model_floor_average_precision=0.3,
            model_floor_recall_at_1pct_fpr=0.1,
        )
    )
    async with (
        permissions_app.router.lifespan_context(permissions_app),
        risk_app.router.lifespan_context(risk_app),
    ):
        issuer.install(permissions_app)
        issuer.install(risk_app)
        admin = new_subject()
        async with permissions_app.state.database.sessionmaker() as session:
            await bootstrap_admin(session, admin)
            await session.commit()
        permissions_app.state.policy_store.mark_stale()
        async with (
            httpx.AsyncClient(transport=httpx.ASGITransport(app=permissions_app), base_url="http://p") as pc,
            httpx.AsyncClient(transport=httpx.ASGITransport(app=risk_app), base_url="http://r") as rc,
        ):
            perms = Perms(client=pc, issuer=issuer, admin=admin, app=permissions_app)
            risk_app.state.permission_client = InProcessPermissions(perms)
            yield Registry(
                perms=perms,
                risk=rc,
                app=risk_app,
                issuer=issuer,
                maker=await perms.staff_member("risk_analyst"),
                checker=await perms.staff_member("approver"),
                reader=await perms.staff_member("user"),
            )


def active_model(registry: Registry) -> ActiveModel:
    return ActiveModel(registry.app.state.database.sessionmaker)


async def test_promotion_needs_a_second_persons_approval(registry: Registry, trained: TrainingResult) -> None:
    version = await registry.register(trained)
    path = f"/staff/models/{version.id}/promotion"

    asked = await registry.risk.post(path, json={}, headers=registry.staff(registry.maker))
    assert asked.status_code == 403
    problem = asked.json()
    assert problem["code"] == "approval_required"
    assert problem["operation"] == "risk.model_promotion"
    assert problem["payload"]["model_id"] == str(version.id)
    assert problem["payload"]["sha256"] == trained.sha256

    approval_id = await registry.approval(problem["payload"])
    own = await registry.approve(approval_id, registry.maker)
    assert own.status_code == 403  # the maker cannot check their own change
    pending = await registry.risk.post(path, json={"approval_id": approval_id}, headers=registry.staff(registry.maker))
    assert pending.status_code == 409
    assert pending.json()["approval_code"] == "approval_not_approved"

    assert (await registry.approve(approval_id)).status_code == 200
    done = await registry.risk.post(path, json={"approval_id": approval_id}, headers=registry.staff(registry.maker))
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["active"]["state"] == "active"
    assert body["active"]["approval_id"] == approval_id
    assert body["approved_by"] == [registry.checker]

    replayed = await registry.risk.post(path, json={"approval_id": approval_id}, headers=registry.staff(registry.maker))
    assert replayed.status_code == 409  # already active; an approval is used once

    follower = active_model(registry)
    assert await follower.refresh()
    current = follower.current()
    assert current is not None
    assert current.version == version.version


async def test_an_approval_is_bound_to_its_change(registry: Registry, trained: TrainingResult) -> None:
    first, second = await registry.register(trained), await registry.register(trained)
    asked = await registry.risk.post(
        f"/staff/models/{first.id}/promotion", json={}, headers=registry.staff(registry.maker)
    )
    approval_id = await registry.approval(asked.json()["payload"])
    assert (await registry.approve(approval_id)).status_code == 200
    other = await registry.risk.post(
        f"/staff/models/{second.id}/promotion",
        json={"approval_id": approval_id},
        headers=registry.staff(registry.maker),
    )
    assert other.status_code == 409
    assert other.json()["approval_code"] == "approval_payload_mismatch"


async def test_rollback_reactivates_the_replaced_version(registry: Registry, trained: TrainingResult) -> None:
    old, new = await registry.register(trained), await registry.register(trained)
    await registry.approved_change(f"/staff/models/{old.id}/promotion")
    promoted = await registry.approved_change(f"/staff/models/{new.id}/promotion")
    assert promoted["active"]["id"] == str(new.id)
    assert promoted["previous"]["id"] == str(old.id)
    assert promoted["previous"]["state"] == "retired"

    follower = active_model(registry)
    await follower.refresh()
    in_use = follower.current()
    assert in_use is not None
    assert in_use.version == new.version

    rolled = await registry.approved_change("/staff/models/rollback")
    assert rolled["kind"] == "rollback"
    assert rolled["active"]["id"] == str(old.id)
    assert rolled["previous"]["state"] == "retired"
    assert await follower.refresh()
    in_use = follower.current()
    assert in_use is not None
    assert in_use.version == old.version

    listed = await registry.risk.get("/staff/models?state=active", headers=registry.staff(registry.reader))
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()] == [str(old.id)]


async def test_a_model_below_the_floor_or_unevaluated_is_refused(registry: Registry, trained: TrainingResult) -> None:
    weak = dataclasses.replace(
        trained,
        metrics=Metrics(
            average_precision=0.05, recall_at_1pct_fpr=0.5, card_precision_at_100=0.1, transactions=10, frauds=1
        ),
    )
    version = await registry.register(weak)
    response = await registry.risk.post(
        f"/staff/models/{version.id}/promotion",
        json={"approval_id": str(uuid.uuid4())},
        headers=registry.staff(registry.maker),
    )
    assert response.status_code == 409
    assert response.json()["code"] == "model_below_floor"
    assert "average_precision" in response.json()["below"]

    unevaluated = await registry.register(trained)
    async with registry.app.state.database.sessionmaker() as session:
        await session.execute(update(ModelVersion).where(ModelVersion.id == unevaluated.id).values(metrics=None))
        await session.commit()
    response = await registry.risk.post(
        f"/staff/models/{unevaluated.id}/promotion", json={}, headers=registry.staff(registry.maker)
    )
    assert response.status_code == 409
    assert response.json()["code"] == "model_not_evaluated"


async def test_a_tampered_stored_model_is_never_used(registry: Registry, trained: TrainingResult) -> None:
    version = await registry.register(trained)
    async with registry.app.state.database.sessionmaker() as session:
        tampered = trained.model.replace(b"leaf_value=", b"leaf_value=7", 1)
        await session.execute(update(ModelVersion).where(ModelVersion.id == version.id).values(model=tampered))
        await session.commit()
    asked = await registry.risk.post(
        f"/staff/models/{version.id}/promotion", json={}, headers=registry.staff(registry.maker)
    )
    approval_id = await registry.approval(asked.json()["payload"])
    assert (await registry.approve(approval_id)).status_code == 200
    refused = await registry.risk.post(
        f"/staff/models/{version.id}/promotion",
        json={"approval_id": approval_id},
        headers=registry.staff(registry.maker),
    )
    assert refused.status_code == 409
    assert refused.json()["code"] == "model_file_refused"


async def test_staff_routes_need_risk_permissions(registry: Registry, trained: TrainingResult) -> None:
    version = await registry.register(trained)
    outsider = new_subject()
    assert (await registry.risk.get("/staff/models", headers=registry.staff(outsider))).status_code == 403
    reader_promotes = await registry.risk.post(
        f"/staff/models/{version.id}/promotion", json={}, headers=registry.staff(registry.reader)
    )
    assert reader_promotes.status_code == 403
    assert reader_promotes.json()["code"] == "permission_denied"
    assert (
        await registry.risk.get(f"/staff/models/{uuid.uuid4()}", headers=registry.staff(registry.reader))
    ).status_code == 404
