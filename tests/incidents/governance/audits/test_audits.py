"""Audits: plan, evidence, findings, remediation to verified closure, and the report in HTML and PDF."""

from __future__ import annotations

import uuid
from datetime import date
from html.parser import HTMLParser
from typing import Any

from sqlalchemy import text

from tests.incidents.governance.conftest import Governance

BASE = "/staff/audits"
HOSTILE = '<img src=x onerror=alert(1)> "审计" & </td>'


def plan(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Q4 access control audit",
        "scope": "Grants of high-risk roles and unmasked reads of personal data",
        "period_from": "2026-10-01",
        "period_to": "2026-12-31",
        "auditors": ["internal-audit-1", "internal-audit-2"],
        "criteria": ["M4.2 least privilege", "M7 audit"],
    }
    body.update(overrides)
    return body


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)


async def test_an_audit_from_plan_to_closure(gov: Governance) -> None:
    gov.pin_today(date(2026, 12, 10))
    auditor = gov.staff("audit:verify", "audit:read", subject="internal-audit-1")
    owner = gov.staff("audit:verify", "audit:read", subject="it-ops-lead")
    created = await gov.http.post(BASE, json=plan(), headers=auditor)
    assert created.status_code == 201, created.text
    audit_id = created.json()["id"]
    assert created.json()["status"] == "planned"

    fieldwork = await gov.http.post(f"{BASE}/{audit_id}/status", json={"status": "fieldwork"}, headers=auditor)
    assert fieldwork.json()["status"] == "fieldwork"
    skip = await gov.http.post(f"{BASE}/{audit_id}/status", json={"status": "closed"}, headers=auditor)
    assert (skip.status_code, skip.json()["code"]) == (409, "invalid_state")

    chain = await gov.http.post(
        f"{BASE}/{audit_id}/evidence",
        json={"kind": "audit_chain", "service": "permissions", "seq_from": 10, "seq_to": 42, "description": "grants"},
        headers=auditor,
    )
    assert chain.status_code == 201, chain.text
    export = await gov.http.post(
        f"{BASE}/{audit_id}/evidence",
        json={
            "kind": "log_export",
            "service": "vault",
            "uri": "s3://audit-archive/vault/access-log-2026Q4.jsonl",
            "sha256": "a" * 64,
            "description": "vault access log export",
        },
        headers=auditor,
    )
    assert export.status_code == 201, export.text
    incomplete = await gov.http.post(
        f"{BASE}/{audit_id}/evidence", json={"kind": "log_export", "description": "no digest"}, headers=auditor
    )
    assert incomplete.status_code == 422

    finding = await gov.http.post(
        f"{BASE}/{audit_id}/findings",
        json={
            "title": "High-risk grant without training record",
            "description": "One grant of payment_approver lacked a training record.",
            "rating": "high",
            "recommendation": "Block grants without training in permissions.",
        },
        headers=auditor,
    )
    assert finding.status_code == 201, finding.text
    finding_id = finding.json()["id"]
    remediation = await gov.http.post(
        f"{BASE}/findings/{finding_id}/remediations",
        json={"action": "Enforce the training check", "owner": "it-ops-lead", "due_on": "2026-12-05"},
        headers=auditor,
    )
    assert remediation.status_code == 201, remediation.text
    assert remediation.json()["overdue"] is True  # due before today, not verified
    remediation_id = remediation.json()["id"]

    not_done = await gov.http.post(
        f"{BASE}/remediations/{remediation_id}/follow-ups", json={"note": "ok", "status": "verified"}, headers=auditor
    )
    assert not_done.status_code == 409
    done = await gov.http.post(
        f"{BASE}/remediations/{remediation_id}/follow-ups", json={"note": "Deployed", "status": "done"}, headers=owner
    )
    assert (done.json()["status"], done.json()["completed_on"]) == ("done", "2026-12-10")
    verified = await gov.http.post(
        f"{BASE}/remediations/{remediation_id}/follow-ups",
        json={"note": "Re-tested: grant refused without training", "status": "verified"},
        headers=auditor,
    )
    assert verified.status_code == 201, verified.text
    assert verified.json()["overdue"] is False
    findings = (await gov.http.get(f"{BASE}/{audit_id}/findings", headers=auditor)).json()
    assert findings[0]["status"] == "closed"
    assert [f["status"] for f in findings[0]["remediations"][0]["follow_ups"]] == ["done", "verified"]

    no_conclusion = await gov.http.post(f"{BASE}/{audit_id}/status", json={"status": "reported"}, headers=auditor)
    assert no_conclusion.status_code == 409
    reported = await gov.http.post(
        f"{BASE}/{audit_id}/status", json={"status": "reported", "conclusion": "Controls effective."}, headers=auditor
    )
    assert reported.json()["conclusion"] == "Controls effective."
    closed = await gov.http.post(f"{BASE}/{audit_id}/status", json={"status": "closed"}, headers=auditor)
    assert closed.json()["status"] == "closed"
    late = await gov.http.post(
        f"{BASE}/{audit_id}/findings",
        json={"title": "t", "description": "d", "rating": "low", "recommendation": "r"},
        headers=auditor,
    )
    assert late.status_code == 409

    async with gov.app.state.database.sessionmaker() as session:
        actions = (await session.execute(text("SELECT action FROM incidents.audit_entry ORDER BY seq"))).scalars().all()
    assert actions.count("audit.follow_up") == 2
    assert "audit.evidence_added" in actions


async def test_the_report_in_html_and_pdf_escapes_everything(gov: Governance) -> None:
    gov.pin_today(date(2026, 12, 10))
    auditor = gov.staff("audit:verify", "audit:read")
    audit_id = (await gov.http.post(BASE, json=plan(title=HOSTILE, scope=HOSTILE), headers=auditor)).json()["id"]
    await gov.http.post(
        f"{BASE}/{audit_id}/evidence",
        json={"kind": "document", "uri": "javascript:alert(1)", "description": HOSTILE},
        headers=auditor,
    )
    finding = await gov.http.post(
        f"{BASE}/{audit_id}/findings",
        json={"title": HOSTILE, "description": HOSTILE, "rating": "critical", "recommendation": HOSTILE},
        headers=auditor,
    )
    await gov.http.post(
        f"{BASE}/findings/{finding.json()['id']}/remediations",
        json={"action": HOSTILE, "owner": "o", "due_on": "2026-12-01"},
        headers=auditor,
    )

    html = await gov.http.get(f"{BASE}/{audit_id}/report.html", headers=auditor)
    assert html.status_code == 200
    assert html.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in html.headers["content-security-policy"]
    assert "<img" not in html.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in html.text
    assert "审计" in html.text
    assert 'href="javascript' not in html.text
    collector = TagCollector()
    collector.feed(html.text)
    assert "img" not in collector.tags
    assert "script" not in collector.tags
    assert "(overdue)" in html.text

    pdf = await gov.http.get(f"{BASE}/{audit_id}/report.pdf", headers=auditor)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert pdf.content.rstrip().endswith(b"%%EOF")

    report = (await gov.http.get(f"{BASE}/{audit_id}/report", headers=auditor)).json()
    assert report["findings_by_rating"]["critical"] == 1
    assert report["overdue_remediations"] == 1


async def test_reading_and_writing_need_the_auditors_permissions(gov: Governance) -> None:
    reader = gov.staff("audit:read")
    refused = await gov.http.post(BASE, json=plan(), headers=reader)
    assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied")
    nobody = gov.staff()
    assert (await gov.http.get(BASE, headers=nobody)).status_code == 403
    missing = await gov.http.get(f"{BASE}/{uuid.uuid4()}/report.html", headers=reader)
    assert (missing.status_code, missing.json()["code"]) == (404, "audit_not_found")
    reversed_period = await gov.http.post(
        BASE, json=plan(period_from="2026-12-31", period_to="2026-01-01"), headers=gov.staff("audit:verify")
    )
    assert reversed_period.status_code == 422
