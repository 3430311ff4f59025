"""The decisions listing for sampling audits, page by page in event order."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.risk.conftest import T0, Risk


async def test_incidents_pages_through_large_transfers_of_a_window(risk: Risk) -> None:
    base = T0 + timedelta(days=200)
    account = "a" + uuid.uuid4().hex[:8]
    ids = []
    approval = str(uuid.uuid4())
    for i in range(5):
        # The core system names the transfer.execute approval it holds for the last one only.
        body = await risk.score(
            account_id=account,
            amount_minor=60_000_000 + i,
            occurred_at=base + timedelta(minutes=i),
            kind="transfer",
            **({"approval_id": approval} if i == 4 else {}),
        )
        ids.append(body["transaction_id"])
    await risk.score(account_id=account, amount_minor=100, occurred_at=base + timedelta(minutes=9))
    params: dict[str, str | int] = {
        "kind": "transfer",
        "min_amount_minor": 50_000_000,
        "occurred_from": base.isoformat(),
        "occurred_to": (base + timedelta(hours=1)).isoformat(),
        "limit": 2,
    }
    seen: list[str] = []
    approvals: list[str | None] = []
    after: str | None = None
    while True:
        query: dict[str, str | int] = {**params, **({"after": after} if after else {})}
        page = await risk.client.get("/internal/decisions", params=query, headers=risk.service("incidents"))
        assert page.status_code == 200, page.text
        seen += [d["transaction_id"] for d in page.json()["decisions"]]
        approvals += [d["approval_id"] for d in page.json()["decisions"]]
        after = page.json()["cursor"]
        if after is None:
            break
    assert seen == ids
    # Sampling audits join the approval the core system named with permissions' record of it.
    assert approvals == [None, None, None, None, approval]
    denied = await risk.client.get("/internal/decisions", headers=risk.service("vault", scope="risk:score"))
    assert denied.status_code == 403
    bad = await risk.client.get("/internal/decisions", params={"after": "nonsense"}, headers=risk.service())
    assert bad.status_code == 400
