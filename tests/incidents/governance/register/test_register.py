"""The risk register: levels by the seed's matrix, plans, reviews, overdue flags and the SVG heat map."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import text

from services.incidents.governance.register.matrix import MATRIX, Level, level_of
from tests.incidents.governance.conftest import Governance

BASE = "/staff/register"
TODAY = date(2026, 12, 7)
SVG = "{http://www.w3.org/2000/svg}"


def risk(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "SQL injection in the core system exploited",
        "description": "A known, unpatched injection flaw in the core banking front end.",
        "category": "technical",
        "likelihood": 3,
        "impact": 5,
        "owner": "Technology department",
        "triggers": "Public exploit released",
        "controls": ["WAF rule", "Parameterised queries"],
        "plan": {
            "control_target": "No exploitable injection in production",
            "measures": ["Patch within 15 working days", "Code review"],
            "response_flow": "On-call security engineer, then CISO",
            "verification": "Quarterly penetration test",
        },
    }
    body.update(overrides)
    return body


@pytest.mark.parametrize(
    ("likelihood", "impact", "expected"),
    [
        (3, 5, Level.high),  # the seed's example assessment: medium likelihood, major impact -> high
        (5, 4, Level.high),  # high likelihood (above 80 %) and severe impact -> high
        (3, 3, Level.medium),  # medium likelihood and general impact -> medium
        (3, 2, Level.medium),
        (1, 1, Level.low),
        (2, 2, Level.low),
        (1, 5, Level.medium),
    ],
)
def test_the_seed_examples_hold_in_the_matrix(likelihood: int, impact: int, expected: Level) -> None:
    assert level_of(likelihood, impact) is expected


def test_the_matrix_is_the_score_rule_and_never_decreases() -> None:
    for likelihood in range(1, 6):
        for impact in range(1, 6):
            score = likelihood * impact
            expected = Level.high if score >= 15 else Level.medium if score >= 5 else Level.low
            assert MATRIX[likelihood - 1][impact - 1] is expected
    with pytest.raises(ValueError, match="1 to 5"):
        level_of(0, 3)


async def test_a_risk_is_rated_planned_and_flagged_when_its_review_is_overdue(gov: Governance) -> None:
    gov.pin_today(TODAY)
    writer = gov.staff("risk:modify", "risk:read")
    created = await gov.http.post(f"{BASE}/risks", json=risk(review_interval_days=30), headers=writer)
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["level"], body["score"]) == ("high", 15)
    assert body["next_review_on"] == str(TODAY + timedelta(days=30))
    assert body["plan"]["measures"] == ["Patch within 15 working days", "Code review"]
    assert body["review_overdue"] is False

    gov.pin_today(TODAY + timedelta(days=31))
    overdue = await gov.http.get(f"{BASE}/risks", params={"overdue": "true"}, headers=writer)
    assert [r["id"] for r in overdue.json()] == [body["id"]]

    reviewed = await gov.http.post(
        f"{BASE}/risks/{body['id']}/reviews",
        json={"likelihood": 2, "impact": 5, "note": "Patched; WAF rule verified"},
        headers=writer,
    )
    assert reviewed.status_code == 201, reviewed.text
    assert reviewed.json()["level"] == "medium"
    after = (await gov.http.get(f"{BASE}/risks/{body['id']}", headers=writer)).json()
    assert after["level"] == "medium"
    assert after["review_overdue"] is False
    assert after["last_reviewed_on"] == str(TODAY + timedelta(days=31))
    assert after["next_review_on"] == str(TODAY + timedelta(days=61))


async def test_filters_by_category_and_level(gov: Governance) -> None:
    writer = gov.staff("risk:modify", "risk:read")
    for category, likelihood, impact in [("customer", 4, 4), ("compliance", 1, 2), ("operational", 3, 3)]:
        response = await gov.http.post(
            f"{BASE}/risks",
            json=risk(title=f"{category} risk", category=category, likelihood=likelihood, impact=impact),
            headers=writer,
        )
        assert response.status_code == 201
    high = (await gov.http.get(f"{BASE}/risks", params={"level": "high"}, headers=writer)).json()
    assert [r["category"] for r in high] == ["customer"]
    compliance = (await gov.http.get(f"{BASE}/risks", params={"category": "compliance"}, headers=writer)).json()
    assert [r["level"] for r in compliance] == ["low"]


async def test_bad_input_and_missing_permissions_are_refused(gov: Governance) -> None:
    writer = gov.staff("risk:modify")
    assert (await gov.http.post(f"{BASE}/risks", json=risk(likelihood=6), headers=writer)).status_code == 422
    assert (await gov.http.post(f"{BASE}/risks", json=risk(category="weather"), headers=writer)).status_code == 422
    reader = gov.staff("risk:read")
    refused = await gov.http.post(f"{BASE}/risks", json=risk(), headers=reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    missing = await gov.http.get(f"{BASE}/risks/{uuid.uuid4()}", headers=reader)
    assert (missing.status_code, missing.json()["code"]) == (404, "risk_not_found")
    customer = gov.issuer.headers(kind="customer")
    assert (await gov.http.get(f"{BASE}/risks", headers=customer)).status_code == 403


async def test_updates_are_audited(gov: Governance) -> None:
    writer = gov.staff("risk:modify", "risk:read")
    created = (await gov.http.post(f"{BASE}/risks", json=risk(), headers=writer)).json()
    patched = await gov.http.patch(
        f"{BASE}/risks/{created['id']}",
        json={"owner": "Risk management department", "status": "closed"},
        headers=writer,
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["owner"], patched.json()["status"]) == ("Risk management department", "closed")
    async with gov.app.state.database.sessionmaker() as session:
        actions = (
            (
                await session.execute(
                    text("SELECT action FROM incidents.audit_entry WHERE target = :t ORDER BY seq"),
                    {"t": created["id"]},
                )
            )
            .scalars()
            .all()
        )
    assert actions == ["register.risk_created", "register.risk_updated"]


async def test_the_heat_map_is_an_svg_of_25_cells_with_counts_and_escaped_titles(gov: Governance) -> None:
    writer = gov.staff("risk:modify", "risk:read")
    hostile = '<script>alert("x")</script> & ]]>'
    for title in (hostile, "Phishing wave"):
        await gov.http.post(f"{BASE}/risks", json=risk(title=title, likelihood=4, impact=5), headers=writer)
    await gov.http.post(f"{BASE}/risks", json=risk(title="Minor", likelihood=1, impact=1), headers=writer)

    response = await gov.http.get(f"{BASE}/heatmap.svg", headers=writer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert "<script>" not in response.text
    root = ElementTree.fromstring(response.text)  # noqa: S314 (our own output, parsed to check it is well formed)
    cells = root.findall(f"{SVG}g")
    assert len(cells) == 25
    counts = {(int(c.get("data-likelihood", "0")), int(c.get("data-impact", "0"))): c for c in cells}
    hot = counts[(4, 5)]
    assert (hot.get("data-count"), hot.get("data-level")) == ("2", "high")
    tooltip = hot.find(f"{SVG}title")
    assert tooltip is not None
    assert hostile in (tooltip.text or "")  # the title survives, as text
    assert counts[(1, 1)].get("data-count") == "1"
    assert counts[(3, 3)].get("data-count") == "0"

    data = (await gov.http.get(f"{BASE}/heatmap", headers=writer)).json()
    assert sum(cell["count"] for cell in data["cells"]) == 3
